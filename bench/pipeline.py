"""Pipeline benchmarks. Each figure is a ratio against a baseline measured in the same run,
interleaved (A B A B ...) and taken as the median, so machine noise hits both sides alike.

    .venv/bin/python bench/pipeline.py            # all three
    .venv/bin/python bench/pipeline.py loop       # or: strategy, features
    options: --repeats N, --threads N, --bars N (features), --rows N (loop)

1. loop      train_model() vs a bare torch loop: same tensors, model, init, batches, optimiser.
             Target: ≤ 5 % slower.
2. strategy  train_strategy() with a RecordingReporter vs a NullReporter (reporting cost).
3. features  data → indicators → fuzzy → features for N synthetic 1h bars (default 1M),
             against reading the same CSV with pandas alone.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from libs.pipeline.model import attach_dropout_generator, build_model  # noqa: E402
from libs.pipeline.progress import NullReporter  # noqa: E402
from libs.pipeline.training.loop import train_model  # noqa: E402
from libs.pipeline.training.setup import TrainParams, make_optimizer  # noqa: E402
from tests.support.reporters import RecordingReporter  # noqa: E402


class Timer:
    """Wall and CPU seconds of a block. CPU time (this process) is the steadier figure on a
    shared machine: time spent descheduled by other tenants does not count."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


Measure = Callable[[], Timer]


def interleaved(runs: dict[str, Measure], repeats: int) -> dict[str, list[Timer]]:
    """`repeats` rounds; each round runs every measurement once, in a shuffled order (so no
    one is always first after the other's garbage)."""
    results: dict[str, list[Timer]] = {name: [] for name in runs}
    order = list(runs)
    shuffle = random.Random(0)
    for _ in range(repeats):
        shuffle.shuffle(order)
        for name in order:
            results[name].append(runs[name]())
    return results


def report(title: str, results: dict[str, list[Timer]], baseline: str) -> None:
    """Medians, and the median of per-round ratios to the baseline. Runs of one round are
    seconds apart and see the same load from other tenants, so the paired ratio is far steadier
    on a shared machine than a ratio of overall medians. CPU time counts this process only,
    not time spent descheduled."""
    print(f"\n{title}")
    base = results[baseline]
    for name, timers in results.items():
        wall = statistics.median(t.wall for t in timers)
        cpu = statistics.median(t.cpu for t in timers)
        line = f"  {name:<26} median wall {wall:.4g}s  cpu {cpu:.4g}s  (n={len(timers)})"
        if name != baseline:
            r_wall = statistics.median(t.wall / b.wall for t, b in zip(timers, base, strict=True))
            r_cpu = statistics.median(t.cpu / b.cpu for t, b in zip(timers, base, strict=True))
            line += f"\n  {'':<26} ratio to {baseline}: wall {r_wall:.3f}  cpu {r_cpu:.3f}"
        print(line)


# --- 1. train loop vs bare torch loop ----------------------------------------------------------


def _loop_data(rows: int, features: int) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, features)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.5]).astype(np.int64)
    n_val = rows // 5
    return tuple(torch.from_numpy(a) for a in (X[n_val:], y[n_val:], X[:n_val], y[:n_val]))


def bare_loop(model: nn.Module, X, y, params: TrainParams) -> None:
    """What one would write by hand: permute, slice, step. No stats, no reporting, no
    validation, no best-weights copy."""
    optimizer = make_optimizer(params, model.parameters())
    criterion = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(params.seed)
    attach_dropout_generator(model, torch.Generator().manual_seed(params.seed + 1))
    model.train()
    bs = params.batch_size
    for _ in range(params.epochs):
        perm = torch.randperm(len(X), generator=shuffle)
        Xe, ye = X[perm], y[perm]
        for start in range(0, len(X), bs):
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(Xe[start : start + bs]), ye[start : start + bs])
            loss.backward()
            optimizer.step()


def bench_loop(args: argparse.Namespace) -> None:
    X, y, Xv, yv = _loop_data(args.rows, 48)
    params = TrainParams(epochs=1, batch_size=32, learning_rate=1e-3, seed=7)
    batches = params.epochs * math.ceil(len(X) / params.batch_size)

    def fresh() -> nn.Module:
        return build_model(48, [30, 15, 8], "relu", 0.2, generator=torch.Generator().manual_seed(1))

    def run_bare() -> Timer:
        model = fresh()
        with Timer() as t:
            bare_loop(model, X, y, params)
        return t

    def run_ours(reporter_factory=NullReporter) -> Measure:
        def run() -> Timer:
            model = fresh()
            with Timer() as t:
                train_model(model, X, y, Xv, yv, params, reporter=reporter_factory())
            return t

        return run

    run_bare()  # warm-up: lazy imports, allocator
    results = interleaved(
        {
            "bare torch loop": run_bare,
            "train_model (Null)": run_ours(),
            "train_model (Recording)": run_ours(RecordingReporter),
        },
        args.repeats,
    )
    report(
        f"1. train loop vs bare torch loop: {len(X)} rows x 48 features, MLP [30,15,8], "
        f"batch 32, {params.epochs} epoch(s) = {batches} batches, "
        f"threads {torch.get_num_threads()}",
        results,
        "bare torch loop",
    )
    per_batch = statistics.median(t.wall for t in results["bare torch loop"]) / batches * 1e6
    print(f"  (bare loop: {per_batch:.0f} µs per batch)")


# --- 2. train_strategy: RecordingReporter vs NullReporter --------------------------------------


def bench_strategy(args: argparse.Namespace) -> None:
    import yaml

    from libs.pipeline.pipeline import train_strategy
    from libs.pipeline.request import TrainingRequest

    strategy = yaml.safe_load((ROOT / "strategies" / "neuro_mean_reversion.yaml").read_text())
    with tempfile.TemporaryDirectory() as models:
        request = TrainingRequest(
            strategy=strategy,
            data_dir=ROOT / "data",
            models_dir=Path(models),
            overrides={"epochs": args.epochs},
        )

        def run(reporter_factory) -> Measure:
            def timed() -> Timer:
                with Timer() as t:
                    train_strategy(request, reporter_factory())
                return t

            return timed

        run(NullReporter)()  # warm-up
        results = interleaved(
            {"NullReporter": run(NullReporter), "RecordingReporter": run(RecordingReporter)},
            args.repeats,
        )
    report(
        f"2. train_strategy(neuro_mean_reversion, {args.epochs} epochs): reporting cost",
        results,
        "NullReporter",
    )


# --- 3. feature building on synthetic bars -----------------------------------------------------


def bench_features(args: argparse.Namespace) -> None:
    import pandas as pd

    from libs.pipeline import dataset
    from libs.pipeline.config.strategy import apply_overrides, load_strategy
    from libs.pipeline.data.synth import synth_ohlcv, write_ohlcv_csv

    cfg = load_strategy(ROOT / "strategies" / "neuro_mean_reversion.yaml")
    cfg = apply_overrides(cfg, symbols=["SYNTH"], timeframes=["1h"])
    with tempfile.TemporaryDirectory() as data_dir:
        t = time.perf_counter()
        csv = write_ohlcv_csv(synth_ohlcv(args.bars, "1h", seed=1), Path(data_dir) / "SYNTH_1h.csv")
        print(f"\n(synthesised {args.bars:,} bars in {time.perf_counter() - t:.1f}s)")

        def read_csv() -> Timer:
            with Timer() as t:
                pd.read_csv(csv, index_col="timestamp", parse_dates=["timestamp"])
            return t

        def build() -> Timer:
            with Timer() as t:
                frames = dataset.load_frames(cfg, Path(data_dir), None, None)
                indicators = dataset.compute_indicators(cfg, frames)
                fuzzy = dataset.compute_fuzzy(cfg, frames, indicators)
                dataset.build_features(cfg, fuzzy)
            return t

        results = interleaved({"pandas read_csv": read_csv, "load+features": build}, args.repeats)
    report(
        f"3. feature building, {args.bars:,} synthetic 1h bars "
        f"({len(cfg.indicators)} indicators, lookback {cfg.model.features.lookback_periods})",
        results,
        "pandas read_csv",
    )
    med = statistics.median(t.wall for t in results["load+features"])
    print(f"  load+features: {args.bars / med:,.0f} bars/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=["loop", "strategy", "features"])
    parser.add_argument("--repeats", type=int, help="rounds (default: 31 / 11 / 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: as CLI)")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    from libs.pipeline.device import configure_threads

    configure_threads(args.threads or None)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    benches = {
        "loop": (bench_loop, 31),
        "strategy": (bench_strategy, 11),
        "features": (bench_features, 3),
    }
    given = args.repeats
    for name in args.which:
        bench, default_repeats = benches[name]
        args.repeats = given or default_repeats
        bench(args)


if __name__ == "__main__":
    main()
