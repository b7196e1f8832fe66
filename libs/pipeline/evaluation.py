"""Test-set metrics: accuracy, balanced accuracy, per-class precision/recall/F1, confusion
matrix, permutation feature importance; the trading read of the signals; the same figures for
baselines on the same rows; block-bootstrap intervals and the verdict.

Classes are 0=BUY 1=HOLD 2=SELL everywhere. Metrics are plain JSON-able dicts: they go into
metrics.json and the Completed event unchanged.

The trading read: BUY holds +1 (long), SELL -1 (short), HOLD 0 (flat) from a bar's close to the
next bar's close; each unit of position change costs `cost_bps` basis points. With several
symbols the portfolio return of a bar time is the mean over the symbols with a row at that
time. Intervals come from a circular moving-block bootstrap over the distinct bar times (blocks
keep the serial correlation of labels and returns), seeded: the same run gives the same
intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from libs.pipeline.classes import SIGNALS, LabelSpace
from libs.pipeline.config.training import EvaluationConfig
from libs.pipeline.model import CLASS_NAMES

BUY_CLASS = 0
Predict = Callable[[np.ndarray], np.ndarray]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = 3) -> np.ndarray:
    """rows = true class, columns = predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str] = CLASS_NAMES
) -> dict[str, Any]:
    """Accuracy, per-class P/R/F1/support, macro F1, confusion matrix and the majority baseline.

    A class never predicted has precision 0 (not NaN), one with no rows recall 0 -- the
    convention of sklearn's zero_division=0, so the JSON never holds NaN.
    """
    k = len(class_names)
    cm = confusion_matrix(y_true, y_pred, k)
    total = int(cm.sum())
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    actual = cm.sum(axis=1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    majority = int(np.argmax(actual)) if total else 0
    present = actual > 0
    return {
        "samples": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(actual[i]),
            }
            for i, name in enumerate(class_names)
        },
        "macro_f1": float(f1.mean()),
        "confusion_matrix": cm.tolist(),
        "baseline": {
            "majority_class": class_names[majority],
            "accuracy": float(actual[majority] / total) if total else 0.0,
        },
    }


@torch.no_grad()
def predict_classes(
    model: nn.Module, X: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> np.ndarray:
    model.eval()
    device = torch.device(device)
    Xt = X if torch.is_tensor(X) else torch.from_numpy(np.ascontiguousarray(X, np.float32))
    out = [
        model(Xt[i : i + 65536].to(device)).argmax(1).cpu() for i in range(0, Xt.shape[0], 65536)
    ]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


@torch.no_grad()
def predict_values(
    model: nn.Module, X: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> np.ndarray:
    """A regression head's outputs (one per row), float64."""
    model.eval()
    device = torch.device(device)
    Xt = X if torch.is_tensor(X) else torch.from_numpy(np.ascontiguousarray(X, np.float32))
    out = [model(Xt[i : i + 65536].to(device))[:, 0].cpu() for i in range(0, Xt.shape[0], 65536)]
    return torch.cat(out).double().numpy() if out else np.zeros(0)


def sign_classes(values: np.ndarray) -> np.ndarray:
    """A return read as a signal: BUY above 0, SELL below, HOLD at exactly 0."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(values > 0, 0, np.where(values < 0, 2, 1)).astype(np.int64)


def _ranks(values: np.ndarray) -> np.ndarray:
    return pd.Series(values).rank(method="average").to_numpy()


def regression_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, Any]:
    """MSE, the information coefficient (Spearman rank correlation of prediction and
    outcome; Pearson beside it) and directional accuracy (the share of rows whose predicted
    return has the outcome's sign), with the MSE of always predicting zero as its baseline."""
    p, a = np.asarray(predicted, np.float64), np.asarray(actual, np.float64)

    def corr(x: np.ndarray, y: np.ndarray) -> float:
        if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
            return 0.0
        return float(np.corrcoef(x, y)[0, 1])

    return {
        "samples": len(a),
        "mse": float(np.mean((p - a) ** 2)) if len(a) else 0.0,
        "mse_zero_baseline": float(np.mean(a**2)) if len(a) else 0.0,
        "information_coefficient": corr(_ranks(p), _ranks(a)),
        "pearson": corr(p, a),
        "directional_accuracy": float(np.mean(np.sign(p) == np.sign(a))) if len(a) else 0.0,
    }


def permutation_importance(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    *,
    seed: int = 42,
    repeats: int = 3,
    top: int = 15,
    device: torch.device | str = "cpu",
    predict: Predict | None = None,
) -> list[dict[str, Any]]:
    """Accuracy drop when one feature's column is shuffled (mean over `repeats` seeded
    shuffles), for the `top` features with the largest drop, largest first. A sequence
    window's feature is shuffled across rows at every step of the window together."""
    if len(X) == 0:
        return []
    predict = predict or (lambda data: predict_classes(model, data, device))
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    base = float((predict(X) == y).mean())
    drops = np.zeros(X.shape[-1])
    shuffled = np.array(X, dtype=np.float32, copy=True)
    for j in range(X.shape[-1]):
        original = shuffled[..., j].copy()
        for _ in range(repeats):
            shuffled[..., j] = original[rng.permutation(len(original))]
            drops[j] += base - float((predict(shuffled) == y).mean())
        shuffled[..., j] = original
    drops /= repeats
    order = sorted(range(len(drops)), key=lambda j: (-drops[j], j))[:top]
    return [{"feature": feature_names[j], "accuracy_drop": float(drops[j])} for j in order]


POSITION = np.array([1.0, 0.0, -1.0])  # BUY long, HOLD flat, SELL short


def periods_per_year(times: pd.Series | pd.DatetimeIndex) -> float:
    """Distinct bar times per calendar year, measured on the data (weekends and holidays
    included in the span, so FX hours and stock days both come out right)."""
    distinct = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(times))).sort_values()
    if len(distinct) < 2:
        return 1.0
    years = (distinct[-1] - distinct[0]) / pd.Timedelta(days=365.25)
    return float((len(distinct) - 1) / years) if years > 0 else 1.0


@dataclass(frozen=True)
class Bars:
    """Per distinct bar time (ascending): the portfolio's return and the correct/total rows."""

    returns: np.ndarray
    correct: np.ndarray
    rows: np.ndarray


def per_bar(
    predictions: np.ndarray,
    y: np.ndarray,
    context: pd.DataFrame,
    cost_bps: float,
    space: LabelSpace = SIGNALS,
) -> tuple[Bars, dict[str, np.ndarray]]:
    """Row positions and net returns (per symbol, in time order) folded into bar times."""
    frame = context[["symbol", "time", "next_return"]].copy()
    frame["position"] = space.position(predictions)
    frame["correct"] = (np.asarray(predictions) == np.asarray(y)).astype(np.float64)
    frame["order"] = np.arange(len(frame))
    frame = frame.sort_values(["symbol", "time", "order"], kind="stable")
    previous = frame.groupby("symbol", sort=False)["position"].shift(1).fillna(0.0)
    frame["change"] = (frame["position"] - previous).abs()
    frame["net"] = frame["position"] * frame["next_return"] - frame["change"] * cost_bps / 1e4
    by_time = frame.groupby("time", sort=True)
    bars = Bars(
        returns=by_time["net"].mean().to_numpy(),
        correct=by_time["correct"].sum().to_numpy(),
        rows=by_time["correct"].size().to_numpy().astype(np.float64),
    )
    return bars, {c: frame[c].to_numpy() for c in ("position", "change", "next_return")}


def sharpe(returns: np.ndarray, periods: float) -> float:
    if len(returns) < 2:
        return 0.0
    std = float(np.std(returns, ddof=1))
    return float(np.mean(returns) / std * np.sqrt(periods)) if std > 0 else 0.0


def trading_metrics(
    predictions: np.ndarray,
    y: np.ndarray,
    context: pd.DataFrame,
    cost_bps: float,
    periods: float,
    space: LabelSpace = SIGNALS,
) -> tuple[dict[str, float], Bars]:
    """Cumulative return, annualised Sharpe, max drawdown, hit rate, turnover, exposure."""
    bars, rows = per_bar(predictions, y, context, cost_bps, space)
    equity = np.cumprod(1.0 + bars.returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    invested = rows["position"] != 0
    wins = rows["position"] * rows["next_return"] > 0
    return {
        "cumulative_return": float(equity[-1] - 1.0) if len(equity) else 0.0,
        "sharpe": sharpe(bars.returns, periods),
        "max_drawdown": float((1.0 - equity / peak).max()) if len(equity) else 0.0,
        "hit_rate": float(wins[invested].mean()) if invested.any() else 0.0,
        "turnover": float(rows["change"].mean()) if len(rows["change"]) else 0.0,
        "exposure": float(invested.mean()) if len(invested) else 0.0,
    }, bars


def block_indices(n: int, block: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) indices of a circular moving-block bootstrap: ceil(n / block) blocks of
    `block` consecutive positions (wrapping), each starting anywhere, cut to n."""
    blocks = -(-n // block)
    starts = rng.integers(0, n, size=(resamples, blocks))
    return ((starts[:, :, None] + np.arange(block)) % n).reshape(resamples, -1)[:, :n]


def interval(values: np.ndarray, confidence: float) -> list[float]:
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def bootstrap(
    model: Bars,
    accuracy_baseline: Bars,
    sharpe_baseline: Bars,
    *,
    periods: float,
    block: int,
    resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Percentile intervals of accuracy minus the best baseline's, of the model's Sharpe and
    of its Sharpe minus the best baseline's, resampling bar times in blocks."""
    n = len(model.returns)
    block = max(1, min(block, n))
    idx = block_indices(n, block, resamples, np.random.default_rng(seed))
    rows = model.rows[idx].sum(axis=1)
    diff = (model.correct[idx].sum(axis=1) - accuracy_baseline.correct[idx].sum(axis=1)) / rows

    def sharpes(returns: np.ndarray) -> np.ndarray:
        sample = returns[idx]
        std = sample.std(axis=1, ddof=1)
        safe = np.where(std > 0, std, 1.0)
        return np.where(std > 0, sample.mean(axis=1) / safe * np.sqrt(periods), 0.0)

    model_sharpe = sharpes(model.returns)
    return {
        "method": "circular moving-block bootstrap over bar times",
        "block_bars": block,
        "resamples": resamples,
        "confidence": confidence,
        "seed": seed,
        "accuracy_minus_best_baseline": interval(diff, confidence),
        "sharpe": interval(model_sharpe, confidence),
        "sharpe_minus_best_baseline": interval(
            model_sharpe - sharpes(sharpe_baseline.returns), confidence
        ),
    }


def verdict_line(metrics: dict[str, Any]) -> str:
    """The one line that says whether the test split shows skill, and why."""
    best = metrics["best_baseline"]
    ci = metrics["bootstrap"]
    level = round(ci["confidence"] * 100)
    acc_lo, acc_hi = ci["accuracy_minus_best_baseline"]
    sh_lo, sh_hi = ci["sharpe"]
    edge_lo, edge_hi = ci["sharpe_minus_best_baseline"]
    sharpe = metrics["trading"]["sharpe"]
    answer = "yes" if metrics["skill"] else "no"
    return (
        f"evidence of skill at {level} %: {answer} (accuracy {metrics['accuracy']:.3f} − best "
        f"baseline {best['accuracy_name']} {best['accuracy']:.3f} = "
        f"{metrics['accuracy'] - best['accuracy']:+.3f} [{acc_lo:+.3f}, {acc_hi:+.3f}]; "
        f"Sharpe {sharpe:.2f} [{sh_lo:.2f}, {sh_hi:.2f}] − best baseline "
        f"{best['sharpe_name']} {best['sharpe']:.2f} = {sharpe - best['sharpe']:+.2f} "
        f"[{edge_lo:+.2f}, {edge_hi:+.2f}])"
    )


def shows_skill(ci: dict[str, Any]) -> bool:
    """Better than the best baseline on both accuracy and net Sharpe, and a net Sharpe above
    zero (beating baselines that all lose is not skill): each interval's low end above zero."""
    return bool(
        ci["accuracy_minus_best_baseline"][0] > 0
        and ci["sharpe_minus_best_baseline"][0] > 0
        and ci["sharpe"][0] > 0
    )


def judge(
    predictions: np.ndarray,
    y: np.ndarray,
    context: pd.DataFrame,
    evaluation: EvaluationConfig,
    *,
    periods: float,
    block: int,
    seed: int,
    space: LabelSpace = SIGNALS,
) -> dict[str, Any]:
    """Classification and trading figures of the predictions and of the baselines on the same
    rows, the bootstrap intervals and the verdict: skill means the intervals of accuracy minus
    the best baseline's, of the (net) Sharpe minus the best baseline's and of the Sharpe all
    lie above zero. `space`: the classes and the position each holds."""
    y = np.asarray(y, dtype=np.int64)
    metrics = classification_metrics(y, predictions, space.names)
    cost = evaluation.cost_bps
    metrics["trading"], model_bars = trading_metrics(predictions, y, context, cost, periods, space)
    majority = int(np.argmax(np.bincount(y, minlength=space.count))) if len(y) else space.long
    rules = {
        "majority_class": np.full(len(y), majority, dtype=np.int64),
        "buy_and_hold": np.full(len(y), space.long, dtype=np.int64),
        "momentum": context["momentum"].to_numpy(dtype=np.int64),
    }
    baselines: dict[str, Any] = {}
    bars: dict[str, Bars] = {}
    for name, rule in rules.items():
        figures = classification_metrics(y, rule, space.names)
        trading, bars[name] = trading_metrics(rule, y, context, cost, periods, space)
        baselines[name] = {
            "accuracy": figures["accuracy"],
            "balanced_accuracy": figures["balanced_accuracy"],
            "macro_f1": figures["macro_f1"],
            "trading": trading,
        }
    baselines["majority_class"]["class"] = space.names[majority]
    by_accuracy = max(baselines, key=lambda b: (baselines[b]["accuracy"], b == "momentum"))
    by_sharpe = max(baselines, key=lambda b: baselines[b]["trading"]["sharpe"])
    metrics["baselines"] = baselines
    metrics["best_baseline"] = {
        "accuracy_name": by_accuracy,
        "accuracy": baselines[by_accuracy]["accuracy"],
        "sharpe_name": by_sharpe,
        "sharpe": baselines[by_sharpe]["trading"]["sharpe"],
    }
    metrics["cost_bps"] = cost
    metrics["periods_per_year"] = periods
    metrics["bootstrap"] = bootstrap(
        model_bars,
        bars[by_accuracy],
        bars[by_sharpe],
        periods=periods,
        block=block,
        resamples=evaluation.bootstrap_resamples,
        confidence=evaluation.confidence,
        seed=seed,
    )
    ci = metrics["bootstrap"]
    metrics["skill"] = shows_skill(ci)
    metrics["verdict"] = verdict_line(metrics)
    return metrics


def evaluate_model(
    model: nn.Module,
    X_test: np.ndarray,
    y_test: np.ndarray,
    feature_names: Sequence[str],
    *,
    context: pd.DataFrame,
    evaluation: EvaluationConfig,
    periods: float,
    block: int,
    seed: int = 42,
    device: torch.device | str = "cpu",
    importance: bool = True,
    space: LabelSpace = SIGNALS,
    regression: bool = False,
) -> dict[str, Any]:
    """Everything that goes into test_metrics (or a walk-forward fold's metrics). A
    regression model is judged on its regression figures and, read as a signal by the sign
    of its prediction, on the same classification and trading figures as a classifier."""
    predictions, y_classes, extra = predict_for_judging(model, X_test, y_test, device, regression)
    metrics = judge(
        predictions,
        y_classes,
        context,
        evaluation,
        periods=periods,
        block=block,
        seed=seed,
        space=space,
    )
    metrics.update(extra)
    if importance:
        metrics["feature_importance"] = permutation_importance(
            model,
            X_test,
            y_classes,
            feature_names,
            seed=seed,
            device=device,
            predict=(lambda data: sign_classes(predict_values(model, data, device)))
            if regression
            else None,
        )
    return metrics


def predict_for_judging(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    device: torch.device | str,
    regression: bool,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(predicted classes, true classes, extra figures): a regression model's values and
    targets read as signals by their sign, with the regression figures as the extra."""
    if not regression:
        return predict_classes(model, X, device), np.asarray(y, dtype=np.int64), {}
    values = predict_values(model, X, device)
    extra = {"regression": regression_metrics(values, y)}
    return sign_classes(values), sign_classes(y), extra
