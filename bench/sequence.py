"""LSTM / GRU vs MLP: training time per epoch on the same data (EURUSD 1h, the shipped file).

    .venv/bin/python bench/sequence.py        # LSTM(20 x 64, 2 layers) vs MLP [64, 32]
    options: --repeats N (rounds), --epochs N (per run), --sequence-length N, --hidden-size N,
             --layers N, --threads N, --kind lstm|gru

The features, labels and split are built once by the pipeline (dataset.*) from one v3 strategy;
the MLP trains on the rows, the sequence model on the windows of `sequence_length` rows ending
at the same rows (the same targets). Runs alternate in shuffled rounds and the figure is the
median of per-round ratios of seconds per epoch (train_model's own epoch durations).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from libs.pipeline import dataset  # noqa: E402
from libs.pipeline.config.strategy import load_strategy  # noqa: E402
from libs.pipeline.model import build_network  # noqa: E402
from libs.pipeline.pipeline import architecture, train_params  # noqa: E402
from libs.pipeline.training.loop import train_model  # noqa: E402


def strategy(kind: str, length: int, hidden: int, layers: int) -> dict:
    model = (
        {"type": "mlp", "architecture": {"hidden_layers": [64, 32], "dropout": 0.2}}
        if kind == "mlp"
        else {
            "type": kind,
            "architecture": {
                "sequence_length": length,
                "hidden_size": hidden,
                "num_layers": layers,
                "dropout": 0.2,
            },
        }
    )
    return {
        "name": f"bench_{kind}",
        "version": "3.0",
        "training_data": {
            "symbols": {"mode": "single", "symbol": "EURUSD"},
            "timeframes": {"mode": "single", "timeframe": "1h"},
        },
        "indicators": {
            "rsi_14": {"type": "rsi", "period": 14},
            "macd_12_26_9": {"type": "macd", "fast": 12, "slow": 26, "signal": 9},
            "adx_14": {"type": "adx", "period": 14},
        },
        "fuzzy_sets": {
            "rsi": {"indicator": "rsi_14", "low": [0, 30, 50], "high": [50, 70, 100]},
            "adx": {"indicator": "adx_14.adx", "weak": [0, 15, 30], "strong": [20, 40, 100]},
        },
        "nn_inputs": [
            {"fuzzy_set": "rsi"},
            {"fuzzy_set": "adx"},
            {"raw_indicator": "macd_12_26_9.line", "normalization": "zscore"},
            {"raw_indicator": "macd_12_26_9.histogram", "normalization": "zscore"},
        ],
        "model": model,
        "training": {
            "labels": {"source": "zigzag", "zigzag_threshold": 0.005, "label_lookahead": 96},
            "batch_size": 64,
            "learning_rate": 0.001,
        },
    }


def prepared(doc: dict, epochs: int):
    cfg = load_strategy(doc)
    data = ROOT / "data"
    frames = dataset.load_frames(cfg, data, None, None)
    fuzzy = dataset.compute_fuzzy(cfg, frames, dataset.compute_indicators(cfg, frames, data))
    parts = dataset.combine(dataset.build_features(cfg, fuzzy), dataset.build_labels(cfg, frames))
    split = dataset.split_and_scale(cfg, parts)
    params = train_params(cfg, seed=1)
    params = type(params)(**{**params.__dict__, "epochs": epochs})
    return cfg, split, params


def seconds_per_epoch(cfg, split, params) -> float:
    model = build_network(
        architecture(cfg), int(split.X_train.shape[-1]), generator=torch.Generator().manual_seed(1)
    )
    outcome = train_model(model, split.X_train, split.y_train, split.X_val, split.y_val, params)
    return statistics.median(h["duration_s"] for h in outcome.history)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sequence-length", type=int, default=20)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kind", choices=("lstm", "gru"), default="lstm")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sides = {
        name: prepared(
            strategy(name, args.sequence_length, args.hidden_size, args.layers), args.epochs
        )
        for name in ("mlp", args.kind)
    }
    rows = {name: len(split.X_train) for name, (_, split, _) in sides.items()}
    print(
        f"EURUSD 1h, train rows: MLP {rows['mlp']} x {sides['mlp'][1].X_train.shape[-1]} features; "
        f"{args.kind.upper()} {rows[args.kind]} windows of {args.sequence_length}, hidden "
        f"{args.hidden_size} x {args.layers} layers; batch 64; {args.threads} torch thread(s)"
    )
    ratios, figures = [], {name: [] for name in sides}
    for _ in range(args.repeats):
        order = list(sides)
        random.shuffle(order)
        times = {name: seconds_per_epoch(*sides[name]) for name in order}
        for name, t in times.items():
            figures[name].append(t)
        ratios.append(times[args.kind] / times["mlp"])
    mlp, seq = statistics.median(figures["mlp"]), statistics.median(figures[args.kind])
    print(
        f"seconds per epoch (median of {args.repeats} rounds): MLP {mlp:.3f}, "
        f"{args.kind.upper()} {seq:.3f}"
    )
    print(
        f"{args.kind.upper()} / MLP time per epoch: {statistics.median(ratios):.1f}x "
        f"(per-round ratios {', '.join(f'{r:.1f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
