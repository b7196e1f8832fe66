"""Fuzzy membership functions (vectorised numpy) and the fuzzification of indicator columns.

Each function maps values to degrees in [0, 1]; NaN in gives NaN out, so warm-up rows stay
recognisably unusable instead of looking like "no membership".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from libs.pipeline.config.sections import FuzzyInputConfig, MembershipConfig


def _as_array(x: np.ndarray | pd.Series | float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def triangular(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """0 outside (a, c), rising to 1 at b, falling back to 0 at c: a trapezoid whose plateau is
    the single point b. A shoulder (a == b or b == c) still gives exactly 1 at b."""
    return trapezoidal(x, a, b, b, c)


def trapezoidal(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """0 outside (a, d), 1 on [b, c], linear in between."""
    x = _as_array(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = (x - a) / (b - a) if b > a else np.zeros_like(x)
        falling = (d - x) / (d - c) if d > c else np.zeros_like(x)
    y = np.where((x > a) & (x < b), rising, 0.0)
    y = np.where((x > c) & (x < d), falling, y)
    y = np.where((x >= b) & (x <= c), 1.0, y)
    return np.where(np.isnan(x), np.nan, y)


def gaussian(x: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    """exp(-(x - mean)^2 / (2 sigma^2)); NaN propagates by itself."""
    x = _as_array(x)
    return np.exp(-0.5 * ((x - mean) / sigma) ** 2)


_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "triangular": triangular,
    "trapezoidal": trapezoidal,
    "gaussian": gaussian,
}


def membership(x: np.ndarray, fuzzy_set: MembershipConfig) -> np.ndarray:
    return _FUNCTIONS[fuzzy_set.type](x, *fuzzy_set.parameters)


def fuzzy_input(
    key: str, fuzzy: FuzzyInputConfig, values: np.ndarray, bars: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Columns `{key}_{set}` for one fuzzy input. With a price_ratio transform the sets read
    `reference / indicator` (e.g. close / sma_20: 1.02 = price 2 % above its average)."""
    x = _as_array(values)
    if fuzzy.input_transform is not None:
        reference = bars[fuzzy.input_transform.reference].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = reference / x
    return {f"{key}_{name}": membership(x, spec) for name, spec in fuzzy.sets.items()}
