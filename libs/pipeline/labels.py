"""ZigZag segment labels: 0 = BUY, 1 = HOLD, 2 = SELL, and -1 = UNKNOWN.

Pivots are the turning points of the close that a reversal of at least `threshold` (a
fraction) confirms: after a low, the highest close before price falls `threshold` below it is
a high pivot, and so on. A bar strictly between two pivots is BUY when the next pivot is the
higher one (an up-leg), SELL when it is lower; pivots themselves, bars before the first
pivot and bars whose next pivot is more than `lookahead` bars away are HOLD. Labels look into
the future by design: they are the targets, never inputs.

A bar after the last confirmed pivot has no label the data can support yet: its leg has not
ended, so neither its direction's end nor whether the bar is itself the coming pivot is known.
Such bars are UNKNOWN, except where the answer is already certain (the coming pivot is at
or after the leg's running extreme, so a bar more than `lookahead` bars before that extreme is
HOLD whatever comes next). The rule this guarantees: a label that is not UNKNOWN on a series
is the label the same bar gets on any longer series (the bars appended can change none), so
labels at the end of a file or at `--end` never claim what the data does not show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUY, HOLD, SELL = 0, 1, 2
UNKNOWN = -1


@dataclass(frozen=True)
class ZigZag:
    pivots: np.ndarray  # confirmed pivots, ascending, alternating lows and highs
    # The earliest bar the next (unconfirmed) pivot can be: the running extreme of the open
    # leg (of both extremes before the first pivot).
    next_pivot_from: int


def zigzag(close: np.ndarray, threshold: float) -> ZigZag:
    """Confirmed pivots and where the next one can be, in one pass over plain Python floats
    (a list is several times faster to walk than a numpy array element by element): about a
    second for a million bars."""
    prices = np.asarray(close, dtype=np.float64).tolist()
    up, down = 1.0 + threshold, 1.0 - threshold
    pivots: list[int] = []
    if not prices:
        return ZigZag(np.zeros(0, dtype=np.int64), 0)
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
    following = {0: min(hi_i, lo_i), 1: hi_i, -1: lo_i}[trend]
    return ZigZag(np.asarray(pivots, dtype=np.int64), following)


def zigzag_pivots(close: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of confirmed pivots, alternating lows and highs, ascending."""
    return zigzag(close, threshold).pivots


def zigzag_labels(close: np.ndarray, threshold: float, lookahead: int) -> np.ndarray:
    """One label per bar (int64), as the module docstring defines."""
    close = np.asarray(close, dtype=np.float64)
    n = len(close)
    zz = zigzag(close, threshold)
    pivots = zz.pivots
    labels = np.full(n, HOLD, dtype=np.int64)
    # After the last confirmed pivot (from the start when there is none): unknown, unless
    # the coming pivot is certainly more than `lookahead` bars away.
    open_from = int(pivots[-1]) + 1 if len(pivots) else 0
    tail = np.arange(open_from, n)
    labels[tail[zz.next_pivot_from - tail <= lookahead]] = UNKNOWN
    if len(pivots) == 0:
        labels[: zz.next_pivot_from] = HOLD  # before the first pivot, wherever it comes
        return labels
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
