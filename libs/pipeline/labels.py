"""ZigZag segment labels: 0 = BUY, 1 = HOLD, 2 = SELL.

Pivots are the turning points of the close that a reversal of at least `threshold` (a
fraction) confirms: after a low, the highest close before price falls `threshold` below it is
a high pivot, and so on. A bar strictly between two pivots is BUY when the next pivot is the
higher one (an up-leg), SELL when it is lower; pivots themselves, bars before the first and
after the last confirmed pivot, and bars whose next pivot is more than `lookahead` bars away
are HOLD. Labels look into the future by design: they are the targets, never inputs.
"""

from __future__ import annotations

import numpy as np

BUY, HOLD, SELL = 0, 1, 2


def zigzag_pivots(close: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of confirmed pivots, alternating lows and highs, ascending.

    One pass over plain Python floats (a list is several times faster to walk than a numpy
    array element by element): about a second for a million bars."""
    prices = np.asarray(close, dtype=np.float64).tolist()
    up, down = 1.0 + threshold, 1.0 - threshold
    pivots: list[int] = []
    if not prices:
        return np.zeros(0, dtype=np.int64)
    # Until the first reversal the direction is unknown: follow both extremes.
    hi_i = lo_i = 0
    hi = lo = prices[0]
    trend = 0  # +1: looking for a high (after a low), -1: looking for a low
    for i, p in enumerate(prices):
        if trend == 0:
            if p > hi:
                hi, hi_i = p, i
            if p < lo:
                lo, lo_i = p, i
            if p >= lo * up:
                pivots.append(lo_i)
                trend, hi, hi_i = 1, p, i
            elif p <= hi * down:
                pivots.append(hi_i)
                trend, lo, lo_i = -1, p, i
        elif trend == 1:
            if p > hi:
                hi, hi_i = p, i
            elif p <= hi * down:
                pivots.append(hi_i)
                trend, lo, lo_i = -1, p, i
        else:
            if p < lo:
                lo, lo_i = p, i
            elif p >= lo * up:
                pivots.append(lo_i)
                trend, hi, hi_i = 1, p, i
    return np.asarray(pivots, dtype=np.int64)


def zigzag_labels(close: np.ndarray, threshold: float, lookahead: int) -> np.ndarray:
    """One label per bar (int64), as the module docstring defines."""
    close = np.asarray(close, dtype=np.float64)
    n = len(close)
    labels = np.full(n, HOLD, dtype=np.int64)
    pivots = zigzag_pivots(close, threshold)
    if len(pivots) < 2:
        return labels
    bars = np.arange(n)
    # The segment of each bar: the last pivot at or before it.
    segment = np.searchsorted(pivots, bars, side="right") - 1
    inside = (segment >= 0) & (segment < len(pivots) - 1)
    bars, segment = bars[inside], segment[inside]
    previous, following = pivots[segment], pivots[segment + 1]
    keep = (bars != previous) & (following - bars <= lookahead)
    bars, previous, following = bars[keep], previous[keep], following[keep]
    labels[bars] = np.where(close[following] > close[previous], BUY, SELL)
    return labels
