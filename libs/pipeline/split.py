"""Time-ordered train/validation/test windows (one set of cut dates for every symbol), walk-
forward folds, and the feature scaler fitted on train rows only.

Cutting each symbol at its own fractions would put one symbol's training rows inside another's
test period, so the cuts are dates on the common timeline: the distinct bar times of all
symbols together. A symbol listed later (or starting later) is cut at the same dates.

Scaling statistics taken from validation or test rows would leak the future into training,
so the scaler is fitted once, on the train split, and the same parameters are saved with the
model (features.json) to transform prediction inputs identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from libs.pipeline.dates import parse_timestamp

if TYPE_CHECKING:
    from libs.pipeline.config.training import DataSplitConfig

SPLITS: tuple[str, ...] = ("train", "validation", "test")


def split_sizes(rows: int, train: float, validation: float) -> tuple[int, int, int]:
    """Row counts per split, train first; rounding leftovers go to test."""
    n_train = int(np.floor(rows * train + 1e-9))
    n_val = int(np.floor(rows * validation + 1e-9))
    return n_train, n_val, rows - n_train - n_val


@dataclass(frozen=True)
class Window:
    """The rows with start <= time < end (None: unbounded) go to split `name`."""

    name: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None


def timeline(indexes: Sequence[pd.Index]) -> pd.DatetimeIndex:
    """The distinct row times of every symbol, ascending."""
    first, *rest = (pd.DatetimeIndex(i) for i in indexes)
    return pd.DatetimeIndex(first.append(rest) if rest else first).unique().sort_values()


def _at(times: pd.DatetimeIndex, i: int) -> pd.Timestamp | None:
    return None if i <= 0 else (times[i] if i < len(times) else times[-1] + pd.Timedelta(1))


def calendar_windows(spec: DataSplitConfig, indexes: Sequence[pd.Index]) -> list[Window]:
    """train / validation / test, cut at the strategy's dates or at its fractions of the
    common timeline (rounding leftovers go to test)."""
    if spec.validation_start is not None and spec.test_start is not None:
        validation_start = pd.Timestamp(parse_timestamp(spec.validation_start))
        test_start = pd.Timestamp(parse_timestamp(spec.test_start))
    else:
        times = timeline(indexes)
        n_train, n_val, _ = split_sizes(len(times), spec.train, spec.validation)
        validation_start = times[min(n_train, len(times) - 1)]
        test_start = times[min(n_train + n_val, len(times) - 1)]
    return [
        Window("train", None, validation_start),
        Window("validation", validation_start, test_start),
        Window("test", test_start, None),
    ]


def walk_forward_windows(spec: DataSplitConfig, indexes: Sequence[pd.Index]) -> list[list[Window]]:
    """k folds (scikit-learn's TimeSeriesSplit): the last k blocks of N // (k + 1) distinct
    times are the test windows, each fitted on what precedes it -- all of it (expanding) or as
    much as the first fold had (rolling) -- of which the last validation / (train +
    validation) share validates. Fold test windows never overlap; every fit is in the past."""
    assert spec.walk_forward is not None
    folds = spec.walk_forward.folds
    times = timeline(indexes)
    size = len(times) // (folds + 1)
    first = len(times) - folds * size
    share = spec.train / (spec.train + spec.validation)
    out = []
    for j in range(folds):
        test_from = first + j * size
        fit_from = 0 if spec.walk_forward.window == "expanding" else test_from - first
        val_from = fit_from + int(np.floor((test_from - fit_from) * share + 1e-9))
        out.append(
            [
                Window("train", _at(times, fit_from), _at(times, val_from)),
                Window("validation", _at(times, val_from), _at(times, test_from)),
                Window("test", _at(times, test_from), _at(times, test_from + size)),
            ]
        )
    return out


def _mean_std(X: np.ndarray, rows: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and population std in float64, a block of rows at a time (Chan et al.'s
    pairwise update), so a million-row matrix needs no full-size temporaries."""
    count, mean, m2 = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for start in range(0, len(X), rows):
        block = X[start : start + rows].astype(np.float64)
        k, block_mean = len(block), block.mean(axis=0)
        block_m2 = ((block - block_mean) ** 2).sum(axis=0)
        delta, total = block_mean - mean, count + k
        mean = mean + delta * (k / total)
        m2 = m2 + block_m2 + delta**2 * (count * k / total)
        count = total
    return mean, np.sqrt(m2 / count)


# Per-column methods of a `columns` scaler (v3 nn_inputs normalization).
COLUMN_METHODS: tuple[str, ...] = ("zscore", "minmax", "none")


@dataclass
class Scaler:
    """Per-feature affine scaling. standard: (x - mean) / std; minmax: (x - min) / (max - min);
    columns: one of zscore (= standard), minmax or none per column, as `columns` lists.
    A constant feature (std or range 0) is only shifted, never divided by zero."""

    method: Literal["standard", "minmax", "columns"] = "standard"
    params: dict[str, list[float]] = field(default_factory=dict)
    columns: list[str] | None = None  # method "columns": each column's method

    def fit(self, X: np.ndarray) -> Scaler:
        X = np.asarray(X)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"the scaler needs a non-empty 2-D array, got shape {X.shape}")
        if self.method == "columns":
            methods = self.columns or []
            if len(methods) != X.shape[1] or set(methods) - set(COLUMN_METHODS):
                raise ValueError(f"columns: one of {COLUMN_METHODS} per feature, got {methods}")
            # The statistics of the whole matrix, then picked per column: the same numbers
            # as a standard or minmax scaler over every column gives.
            mean, std = _mean_std(X)
            lo, hi = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)
            pick = np.asarray(methods)
            offset = np.where(pick == "zscore", mean, np.where(pick == "minmax", lo, 0.0))
            spread = np.where(pick == "zscore", std, np.where(pick == "minmax", hi - lo, 1.0))
            self.params = {"offset": offset.tolist(), "scale": spread.tolist()}
        elif self.method == "standard":
            mean, std = _mean_std(X)
            self.params = {"mean": mean.tolist(), "std": std.tolist()}
        elif self.method == "minmax":
            lo, hi = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)
            self.params = {"min": lo.tolist(), "max": hi.tolist()}
        else:
            raise ValueError(f"scaling method: unknown {self.method!r}; valid: standard, minmax")
        return self

    def _offset_scale(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.params:
            raise ValueError("the scaler is not fitted")
        if self.method == "columns":
            offset, scale = np.array(self.params["offset"]), np.array(self.params["scale"])
        elif self.method == "standard":
            offset, scale = np.array(self.params["mean"]), np.array(self.params["std"])
        else:
            offset = np.array(self.params["min"])
            scale = np.array(self.params["max"]) - offset
        return offset, np.where(scale > 0, scale, 1.0)

    def transform(self, X: np.ndarray, *, copy: bool = True) -> np.ndarray:
        """Scaled float32 features. copy=False scales a float32 array in place (no temporary
        copies of a large matrix)."""
        offset, scale = self._offset_scale()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(offset):
            raise ValueError(f"expected {len(offset)} features, got shape {X.shape}")
        out = X.astype(np.float32, copy=copy or X.dtype != np.float32)
        out -= offset.astype(np.float32)
        out /= scale.astype(np.float32)
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "params": {k: list(v) for k, v in self.params.items()},
        }
        if self.columns is not None:
            out["columns"] = list(self.columns)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaler:
        columns = data.get("columns")
        return cls(
            method=data["method"],
            params={k: list(v) for k, v in data["params"].items()},
            columns=list(columns) if columns is not None else None,
        )
