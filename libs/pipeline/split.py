"""Time-ordered train/validation/test split and the feature scaler fitted on train rows only.

Scaling statistics taken from validation or test rows would leak the future into training,
so the scaler is fitted once, on the train split, and the same parameters are saved with the
model (features.json) to transform prediction inputs identically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

SPLITS: tuple[str, ...] = ("train", "validation", "test")


def split_sizes(rows: int, train: float, validation: float) -> tuple[int, int, int]:
    """Row counts per split, train first; rounding leftovers go to test."""
    n_train = int(np.floor(rows * train + 1e-9))
    n_val = int(np.floor(rows * validation + 1e-9))
    return n_train, n_val, rows - n_train - n_val


@dataclass
class Scaler:
    """Per-feature affine scaling. standard: (x - mean) / std; minmax: (x - min) / (max - min).
    A constant feature (std or range 0) is only shifted, never divided by zero."""

    method: Literal["standard", "minmax"] = "standard"
    params: dict[str, list[float]] = field(default_factory=dict)

    def fit(self, X: np.ndarray) -> Scaler:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"the scaler needs a non-empty 2-D array, got shape {X.shape}")
        if self.method == "standard":
            self.params = {"mean": X.mean(axis=0).tolist(), "std": X.std(axis=0).tolist()}
        elif self.method == "minmax":
            self.params = {"min": X.min(axis=0).tolist(), "max": X.max(axis=0).tolist()}
        else:
            raise ValueError(f"scaling method: unknown {self.method!r}; valid: standard, minmax")
        return self

    def _offset_scale(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.params:
            raise ValueError("the scaler is not fitted")
        if self.method == "standard":
            offset, scale = np.array(self.params["mean"]), np.array(self.params["std"])
        else:
            offset = np.array(self.params["min"])
            scale = np.array(self.params["max"]) - offset
        return offset, np.where(scale > 0, scale, 1.0)

    def transform(self, X: np.ndarray) -> np.ndarray:
        offset, scale = self._offset_scale()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(offset):
            raise ValueError(f"expected {len(offset)} features, got shape {X.shape}")
        return ((X - offset) / scale).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": {k: list(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaler:
        return cls(method=data["method"], params={k: list(v) for k, v in data["params"].items()})
