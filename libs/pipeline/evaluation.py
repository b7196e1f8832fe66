"""Test-set metrics: accuracy, per-class precision/recall/F1, confusion matrix, the majority-class
baseline the model has to beat, and permutation feature importance.

Classes are 0=BUY 1=HOLD 2=SELL everywhere. Metrics are plain JSON-able dicts: they go into
metrics.json and the Completed event unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from libs.pipeline.model import CLASS_NAMES


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
    return {
        "samples": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
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
) -> list[dict[str, Any]]:
    """Accuracy drop when one feature's column is shuffled (mean over `repeats` seeded
    shuffles), for the `top` features with the largest drop, largest first."""
    if len(X) == 0:
        return []
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    base = float((predict_classes(model, X, device) == y).mean())
    drops = np.zeros(X.shape[1])
    shuffled = np.array(X, dtype=np.float32, copy=True)
    for j in range(X.shape[1]):
        original = shuffled[:, j].copy()
        for _ in range(repeats):
            shuffled[:, j] = original[rng.permutation(len(original))]
            drops[j] += base - float((predict_classes(model, shuffled, device) == y).mean())
        shuffled[:, j] = original
    drops /= repeats
    order = sorted(range(len(drops)), key=lambda j: (-drops[j], j))[:top]
    return [{"feature": feature_names[j], "accuracy_drop": float(drops[j])} for j in order]


def evaluate_model(
    model: nn.Module,
    X_test: np.ndarray,
    y_test: np.ndarray,
    feature_names: Sequence[str],
    *,
    seed: int = 42,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Everything that goes into test_metrics."""
    metrics = classification_metrics(y_test, predict_classes(model, X_test, device))
    metrics["feature_importance"] = permutation_importance(
        model, X_test, y_test, feature_names, seed=seed, device=device
    )
    return metrics
