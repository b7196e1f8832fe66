"""The honest-evaluation table of the shipped strategies: for each strategy and seed, test
accuracy, macro-F1 and Sharpe against each baseline with their intervals, the verdict, and the
walk-forward figures (the strategy's folds, else 4 expanding ones where the data allows), as
markdown.

    PYTHONPATH=. python scripts/evaluation_table.py [--seeds 1,7,42] [--epochs N]

Trains with `train_strategy()` exactly as `ktrdr train` does, into a temporary models folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from libs.pipeline.config.strategy import load_strategy
from libs.pipeline.data.ohlcv import DataError
from libs.pipeline.pipeline import train_strategy
from libs.pipeline.request import TrainingRequest

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("neuro_mean_reversion", "eurusd_multi_timeframe", "stocks_daily_multi_symbol")


def row(name: str, seed: int, test: dict) -> str:
    ci = test["bootstrap"]
    base = test["baselines"]
    acc_lo, acc_hi = ci["accuracy_minus_best_baseline"]
    sh_lo, sh_hi = ci["sharpe"]
    best = test["best_baseline"]
    baselines = " / ".join(
        f"{b['accuracy']:.3f}, {b['trading']['sharpe']:+.2f}"
        for b in (base["majority_class"], base["buy_and_hold"], base["momentum"])
    )
    walk = test.get("walk_forward")
    wf = "—"
    if walk:
        pooled = walk["pooled"]
        p_lo, p_hi = pooled["bootstrap"]["accuracy_minus_best_baseline"]
        wf = (
            f"acc {walk['mean']['accuracy']['mean']:.3f}±{walk['mean']['accuracy']['std']:.3f}, "
            f"Sharpe {walk['mean']['sharpe']['mean']:+.2f}±{walk['mean']['sharpe']['std']:.2f}; "
            f"pooled acc−best {pooled['accuracy'] - pooled['best_baseline']['accuracy']:+.3f} "
            f"[{p_lo:+.3f}, {p_hi:+.3f}], skill: {'yes' if pooled['skill'] else 'no'}"
        )
    return (
        f"| {name} | {seed} | {test['samples']} | {test['accuracy']:.3f} | {test['macro_f1']:.3f} "
        f"| {test['trading']['sharpe']:+.2f} [{sh_lo:+.2f}, {sh_hi:+.2f}] | {baselines} "
        f"| {best['accuracy_name']}: {test['accuracy'] - best['accuracy']:+.3f} "
        f"[{acc_lo:+.3f}, {acc_hi:+.3f}] | {'yes' if test['skill'] else '**no**'} | {wf} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="1,7,42")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    print(
        "| strategy | seed | test rows | accuracy | macro-F1 | Sharpe [95 % CI] "
        "| baselines acc, Sharpe: majority / buy-and-hold / momentum "
        "| acc − best baseline [95 % CI] | skill | walk-forward |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    epochs = {"epochs": args.epochs} if args.epochs else {}
    with tempfile.TemporaryDirectory() as models:
        for name in STRATEGIES:
            strategy = load_strategy(ROOT / "strategies" / f"{name}.yaml").snapshot()
            split = strategy["training"]["data_split"]
            # walk-forward for every strategy: the file's own, else 4 expanding folds
            walk = split | {"walk_forward": split["walk_forward"] or {"folds": 4}}
            for seed in (int(s) for s in args.seeds.split(",")):
                request = TrainingRequest(
                    strategy=strategy,
                    data_dir=ROOT / "data",
                    models_dir=Path(models),
                    overrides={**epochs, "data_split": walk},
                    seed=seed,
                )
                try:
                    result = train_strategy(request)
                except DataError as exc:  # too little data for the folds: judge without them
                    print(f"<!-- {name} seed {seed}: no walk-forward: {exc} -->", flush=True)
                    request = dataclasses.replace(request, overrides=epochs)
                    result = train_strategy(request)
                print(row(name, seed, result.test_metrics), flush=True)


if __name__ == "__main__":
    main()
