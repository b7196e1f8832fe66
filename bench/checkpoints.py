"""What checkpoints cost per shipped strategy: ratios against baselines measured in the same run.

    .venv/bin/python bench/checkpoints.py                # every strategy in strategies/
    .venv/bin/python bench/checkpoints.py neuro_mean_reversion --epochs 4 --threads 1

For each strategy, on its full data (the shipped CSVs), with its own settings but a few epochs:

1. checkpoint cost per epoch: the time to encode one end-of-epoch checkpoint (torch.save of the
   whole loop state), to hand it to the sink's writer thread, and to store it on the filesystem
   artifact store (atomic, fsync'd; on the writer thread, beside the training), and its bytes --
   against the epoch's own duration (training + validation, measured by the loop). The training
   thread pays the encode and the hand-over only;
2. time to resumed progress: a run resumed from the checkpoint after epoch 1 (data phases run
   again, the checkpoint read and loaded) until its first batch, against a fresh run until its
   first batch. On the bus a killed trainer's request is redelivered as soon as its connection
   drops, so this is most of "kill -9 to resumed progress"; docs/trainer.md has the numbers.

Runs are interleaved and the median taken, so load from other processes hits both sides alike.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from libs.artifacts.filesystem import FilesystemArtifactStore  # noqa: E402
from libs.pipeline.config.strategy import load_strategy  # noqa: E402
from libs.pipeline.pipeline import train_strategy  # noqa: E402
from libs.pipeline.progress import BatchInfo, EpochInfo, Reporter, TrainingCancelled  # noqa: E402
from libs.pipeline.request import TrainingRequest  # noqa: E402
from libs.pipeline.training import loop  # noqa: E402
from libs.pipeline.training.checkpoint import Position  # noqa: E402
from services.trainer.checkpoints import ArtifactCheckpoints  # noqa: E402


class TimedCheckpoints(ArtifactCheckpoints):
    """The trainer's sink, timing each hand-over (training thread) and store write (writer)."""

    def __init__(self, root: Path) -> None:
        super().__init__(FilesystemArtifactStore(root), "bench", "t", keep=3, interval_s=None)
        self.handovers: list[tuple[Position, float]] = []
        self.writes: list[tuple[str, float, int]] = []

    def save(self, data: bytes, position: Position) -> None:
        started = time.perf_counter()
        super().save(data, position)
        self.handovers.append((position, time.perf_counter() - started))

    def _write(self, key: str, data: bytes) -> None:
        started = time.perf_counter()
        super()._write(key, data)
        self.writes.append((key, time.perf_counter() - started, len(data)))


class Watch(Reporter):
    """Epoch durations; the time of the first batch; stops after `stop_after` epochs."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.started = time.perf_counter()
        self.first_batch_s: float | None = None
        self.epochs: list[float] = []
        self.stop_after = stop_after

    def batch_progress(self, info: BatchInfo) -> None:
        if self.first_batch_s is None:
            self.first_batch_s = time.perf_counter() - self.started

    def epoch_completed(self, info: EpochInfo) -> None:
        self.epochs.append(info.duration_s)

    def is_cancelled(self) -> bool:
        return self.stop_after is not None and len(self.epochs) >= self.stop_after


PLAIN_ENCODE = loop.encode


def timed_encode(encodes: list[float]) -> Any:
    plain = PLAIN_ENCODE

    def encode(payload: dict[str, Any]) -> bytes:
        started = time.perf_counter()
        data = plain(payload)
        encodes.append(time.perf_counter() - started)
        return data

    return encode


def request(strategy: Path, epochs: int, models: Path) -> TrainingRequest:
    return TrainingRequest(
        strategy=load_strategy(strategy).snapshot(),
        data_dir=ROOT / "data",
        models_dir=models,
        overrides={"epochs": epochs, "early_stopping": None},
        seed=7,
        device="cpu",
    )


def bench_strategy(strategy: Path, epochs: int, repeats: int) -> dict[str, float]:
    encode_s, handover_s, store_s, sizes, epoch_s, fresh_s, resumed_s = [], [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: imports, file cache, TA-Lib
        train_strategy(request(strategy, 1, Path(tmp)))
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            sink = TimedCheckpoints(root / "artifacts")
            encodes: list[float] = []
            loop.encode = timed_encode(encodes)
            try:
                watch = Watch()
                train_strategy(request(strategy, epochs, root / "m1"), watch, checkpoints=sink)
            finally:
                loop.encode = PLAIN_ENCODE
            sink.close()
            ends = [(s, b) for key, s, b in sink.writes if key.endswith("-b000000.ckpt")]
            encode_s += encodes
            handover_s += [s for p, s in sink.handovers]
            store_s += [s for s, _ in ends]
            sizes += [b for _, b in ends]
            epoch_s += watch.epochs
            fresh_s.append(watch.first_batch_s or 0.0)

            # Resume after epoch 1: a checkpoint of epoch 1 only, as a kill in epoch 2 leaves.
            first = TimedCheckpoints(root / "resume")
            stopper = Watch(stop_after=1)
            with contextlib.suppress(TrainingCancelled):
                train_strategy(
                    request(strategy, epochs, root / "m2"), stopper, stopper, checkpoints=first
                )
            first.close()
            resumed = Watch()
            resumed_sink = TimedCheckpoints(root / "resume")
            train_strategy(
                request(strategy, epochs, root / "m3"), resumed, checkpoints=resumed_sink
            )
            resumed_s.append(resumed.first_batch_s or 0.0)
    return {
        "epoch_s": statistics.median(epoch_s),
        "encode_s": statistics.median(encode_s),
        "handover_s": statistics.median(handover_s),
        "store_s": statistics.median(store_s),
        "bytes": statistics.median(sizes),
        "fresh_first_batch_s": statistics.median(fresh_s),
        "resumed_first_batch_s": statistics.median(resumed_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("strategies", nargs="*", help="names in strategies/ (default: all)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.strategies or sorted(p.stem for p in (ROOT / "strategies").glob("*.yaml"))
    print(
        f"{'strategy':28} {'epoch':>9} {'ckpt encode':>12} {'hand-over':>10} {'store':>9} "
        f"{'bytes':>10} {'thread/epoch':>13} {'first batch':>12} {'resumed':>9} {'ratio':>6}"
    )
    print("  (store: on the writer thread; thread/epoch: what the training thread pays, encode +")
    print("  hand-over, against the epoch's duration)")
    for name in names:
        f = bench_strategy(ROOT / "strategies" / f"{name}.yaml", args.epochs, args.repeats)
        cost = f["encode_s"] + f["handover_s"]
        print(
            f"{name:28} {f['epoch_s'] * 1e3:7.1f}ms {f['encode_s'] * 1e3:10.2f}ms "
            f"{f['handover_s'] * 1e3:8.3f}ms {f['store_s'] * 1e3:7.2f}ms {f['bytes']:10,.0f} "
            f"{cost / f['epoch_s']:12.2%} "
            f"{f['fresh_first_batch_s']:11.2f}s {f['resumed_first_batch_s']:8.2f}s "
            f"{f['resumed_first_batch_s'] / f['fresh_first_batch_s']:6.2f}"
        )


if __name__ == "__main__":
    main()
