"""The bus trainer's checkpoints, on the artifact store: the CheckpointSink of one training.

Keys: `checkpoints/{tenant}/{training_id}/e{epoch:06d}-b{batch:06d}.ckpt`, so the newest is the
last in key order and its position reads off the key. Every write is atomic (the store's
promise); the newest `keep` are kept, older ones deleted once a newer one is stored. Any
trainer that shares the store (a shared volume, S3) can continue the training, so a training
resumes on another machine. Once the training reaches its terminal event its checkpoints are
deleted (`discard`).

Checkpoints are written on a writer thread of this sink: the training thread encodes one
(`torch.save` holds the GIL, so another thread would not spare it that time) and hands the bytes
over, so the store's fsync or network round trips never stall a batch. At most one checkpoint
is in flight: handing over the next one waits for the one before to be stored (as good as
never: an epoch outlasts a write), so when the loop reports epoch k complete the checkpoint
that starts epoch k is durable -- a killed run resumes at most one epoch back. `close()`
returns once the last checkpoint handed over is stored and ends the thread: the trainer calls
it when the run ends, before any terminal event or hand-back. A failed write is logged and
costs only recomputation: the resume starts from the checkpoint before it, exactly.

A checkpoint that cannot be read back (a half-copied restore, a format this code does not
read) is skipped for the one before it: resuming from an older checkpoint is still exact.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from libs.artifacts.port import ArtifactNotFound, ArtifactStore
from libs.metrics import observe_checkpoint
from libs.pipeline.training.checkpoint import Position, position_of

log = logging.getLogger("ktrdr.trainer.checkpoints")

_NAME = re.compile(r"e(\d{6,})-b(\d{6,})\.ckpt$")
PREFIX = "checkpoints"


class ArtifactCheckpoints:
    def __init__(
        self,
        store: ArtifactStore,
        tenant: str,
        training_id: str,
        *,
        keep: int = 3,
        interval_s: float | None = None,
    ) -> None:
        self.store = store
        self.prefix = f"{PREFIX}/{tenant}/{training_id}/"
        self.keep = max(1, keep)
        self.interval_s = interval_s
        self._resume: tuple[Position, bytes] | None = None
        self._looked = False
        self._stored: list[str] | None = None  # this run's view of the keys, oldest first
        self._changed = threading.Condition()
        self._job: tuple[str, bytes] | None = None  # handed over, not taken by the writer
        self._busy = False  # a checkpoint is handed over and not yet stored (or failed)
        self._writer: threading.Thread | None = None
        self._closing = False
        self.waited_s = 0.0  # how long hand-overs waited for the checkpoint before them
        self.failures = 0

    # --- the CheckpointSink protocol (called from the training thread) -------------------------
    def latest(self) -> bytes | None:
        found = self.resume_point()
        return found[1] if found else None

    def save(self, data: bytes, position: Position) -> None:
        """Hand `data` to the writer thread; returns at once unless the checkpoint before it
        is still being stored."""
        key = f"{self.prefix}e{position.epoch:06d}-b{position.batch:06d}.ckpt"
        with self._changed:
            if self._busy:
                began = time.perf_counter()
                self._changed.wait_for(lambda: not self._busy)
                self.waited_s += time.perf_counter() - began
            self._job, self._busy = (key, data), True
            if self._writer is None:
                self._closing = False
                self._writer = threading.Thread(
                    target=self._write_jobs, name="checkpoint-writer", daemon=True
                )
                self._writer.start()
            self._changed.notify_all()

    # --- for the trainer -----------------------------------------------------------------------
    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until the checkpoint handed over last is stored (or failed); False on
        timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._busy, timeout_s)

    def close(self) -> None:
        """Flush, then end the writer thread (a later `save` starts another)."""
        with self._changed:
            self._changed.wait_for(lambda: not self._busy)
            self._closing = True
            self._changed.notify_all()
            writer = self._writer
        if writer is not None:
            writer.join()

    def resume_point(self) -> tuple[Position, bytes] | None:
        """The newest readable checkpoint and where it stands (looked up once per run)."""
        if not self._looked:
            self._looked = True
            self._resume = self._newest_readable()
        return self._resume

    def discard(self) -> int:
        """Delete every checkpoint of the training (it reached its terminal event)."""
        self.close()
        keys = self._keys()
        for key in keys:
            self.store.delete(key)
        self._stored = []
        return len(keys)

    # --- the writer thread ---------------------------------------------------------------------
    def _write_jobs(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._job is not None or self._closing)
                if self._job is None:
                    self._writer = None
                    return
                (key, data), self._job = self._job, None
            try:
                self._write(key, data)
            except Exception as error:
                self.failures += 1
                log.warning("checkpoint %s not stored (%s); the previous one stays", key, error)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def _write(self, key: str, data: bytes) -> None:
        with observe_checkpoint("save"):  # ktrdr_checkpoint_seconds{phase="save"}
            self.store.put_bytes(key, data)
        if self._stored is None:  # listed once per run; afterwards this run knows its keys
            self._stored = self._keys()
        if key not in self._stored:
            self._stored.append(key)
            self._stored.sort()
        while len(self._stored) > self.keep:
            self.store.delete(self._stored[0])
            del self._stored[0]

    def _keys(self) -> list[str]:
        return sorted(info.key for info in self.store.list(self.prefix) if _NAME.search(info.key))

    def _newest_readable(self) -> tuple[Position, bytes] | None:
        for key in reversed(self._keys()):
            try:
                with observe_checkpoint("load"):
                    data = self.store.get_bytes(key)
                return position_of(data), data
            except ArtifactNotFound:
                continue  # pruned by a newer run meanwhile
            except Exception as error:
                log.warning("checkpoint %s is unreadable (%s); trying an older one", key, error)
        return None
