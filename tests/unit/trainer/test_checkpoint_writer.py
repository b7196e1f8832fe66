"""The trainer's checkpoint sink writes on a thread of its own (services/trainer/checkpoints.py):
the training thread does not wait for the store, at most one write is in flight, the newest
`keep` are kept, and a failed write is survived."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from libs.artifacts.filesystem import FilesystemArtifactStore
from libs.pipeline.training.checkpoint import Position
from services.trainer.checkpoints import ArtifactCheckpoints


class GatedStore(FilesystemArtifactStore):
    """A filesystem store whose checkpoint writes wait for `gate` (a slow disk or network)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail_next = False

    def put_bytes(self, key, data):
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        return super().put_bytes(key, data)


def stored(store, prefix="checkpoints/") -> list[str]:
    return [info.key.rsplit("/", 1)[1] for info in store.list(prefix)]


@pytest.fixture
def store(tmp_path):
    return GatedStore(tmp_path / "store")


def test_save_returns_while_the_store_is_still_writing(store):
    sink = ArtifactCheckpoints(store, "t", "run")
    sink.save(b"one", Position(1, 0))
    assert store.entered.wait(10)
    assert stored(store) == []  # save() returned, the write is still held at the gate
    assert sink.flush(timeout_s=0.05) is False
    store.gate.set()
    assert sink.flush(timeout_s=10) is True
    assert stored(store) == ["e000001-b000000.ckpt"]


def test_the_next_checkpoint_waits_for_the_write_before_it(store):
    """At most one write in flight: when the loop reports an epoch complete, the checkpoint
    before the one it just handed over is durable (a killed run loses at most one epoch)."""
    sink = ArtifactCheckpoints(store, "t", "run", keep=5)
    sink.save(b"1", Position(1, 0))
    assert store.entered.wait(10)  # the first is being written, held at the gate
    second = threading.Thread(target=sink.save, args=(b"2", Position(2, 0)))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waits for the first write
    store.gate.set()
    second.join(10)
    assert not second.is_alive()
    assert "e000001-b000000.ckpt" in stored(store)
    assert sink.flush(timeout_s=10)
    assert stored(store) == ["e000001-b000000.ckpt", "e000002-b000000.ckpt"]
    assert sink.waited_s > 0


def test_only_the_newest_keep_stay_and_discard_removes_the_rest(store):
    store.gate.set()
    sink = ArtifactCheckpoints(store, "t", "run", keep=2)
    for epoch in range(1, 6):
        sink.save(b"x", Position(epoch, 0))
        assert sink.flush(timeout_s=10)
    assert stored(store) == ["e000004-b000000.ckpt", "e000005-b000000.ckpt"]
    assert sink.discard() == 2
    assert stored(store) == []


def test_a_failed_write_is_logged_and_the_previous_checkpoint_stays(store, caplog):
    store.gate.set()
    sink = ArtifactCheckpoints(store, "t", "run")
    sink.save(b"good", Position(1, 0))
    assert sink.flush(timeout_s=10)
    store.fail_next = True
    sink.save(b"lost", Position(2, 0))
    assert sink.flush(timeout_s=10)
    assert sink.failures == 1
    assert "not stored (disk full)" in caplog.text
    assert stored(store) == ["e000001-b000000.ckpt"]
    # A later checkpoint is written again as usual.
    sink.save(b"later", Position(3, 0))
    assert sink.flush(timeout_s=10)
    assert stored(store) == ["e000001-b000000.ckpt", "e000003-b000000.ckpt"]


def test_a_resumed_run_prunes_the_checkpoints_of_earlier_attempts(store):
    store.gate.set()
    earlier = ArtifactCheckpoints(store, "t", "run", keep=2)
    for epoch in (1, 2):
        earlier.save(b"x", Position(epoch, 0))
    assert earlier.flush(timeout_s=10)
    resumed = ArtifactCheckpoints(store, "t", "run", keep=2)
    resumed.save(b"y", Position(3, 0))
    assert resumed.flush(timeout_s=10)
    assert stored(store) == ["e000002-b000000.ckpt", "e000003-b000000.ckpt"]


def test_close_stores_the_last_checkpoint_and_ends_the_writer(store):
    store.gate.set()
    sink = ArtifactCheckpoints(store, "t", "run")
    sink.save(b"last", Position(4, 7))
    writer = sink._writer
    assert writer is not None and writer.is_alive()
    sink.close()
    assert not writer.is_alive()
    assert store.get_bytes("checkpoints/t/run/e000004-b000007.ckpt") == b"last"
    sink.save(b"again", Position(5, 0))  # a later save starts another writer
    sink.close()
    assert stored(store)[-1] == "e000005-b000000.ckpt"
