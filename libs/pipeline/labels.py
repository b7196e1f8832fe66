"""Training labels. ZigZag segment labels (below) and the v3 sources at the end of the module:
forward returns (thresholded or as a regression target), the triple barrier (with its CUSUM
event filter and average-uniqueness weights) and the four-class regime labeler.

ZigZag segment labels: 0 = BUY, 1 = HOLD, 2 = SELL, and -1 = UNKNOWN.

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
import pandas as pd

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


# --- v3 label sources -----------------------------------------------------------------------
# Every function takes plain arrays of one symbol's base bars and gives one label per bar:
# UNKNOWN where the data cannot tell yet (the bars it needs lie beyond the series' end, or a
# volatility estimate is still warming up), NOT_EVENT where a triple-barrier CUSUM filter
# makes the bar no sample at all. Labels read the future by design; they are targets only.

NOT_EVENT = -2
TREND_UP, TREND_DOWN, RANGE, VOLATILE = 0, 1, 2, 3


def forward_returns(close: np.ndarray, horizon: int) -> np.ndarray:
    """close[t + horizon] / close[t] - 1; NaN for the last `horizon` bars (not known yet)."""
    close = np.asarray(close, dtype=np.float64)
    out = np.full(len(close), np.nan)
    if len(close) > horizon:
        out[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    return out


def threshold_labels(returns: np.ndarray, bullish: float, bearish: float) -> np.ndarray:
    """BUY when the return is above `bullish`, SELL below `bearish`, HOLD between (both
    bounds included in HOLD); UNKNOWN where the return is NaN."""
    r = np.asarray(returns, dtype=np.float64)
    labels = np.where(r > bullish, BUY, np.where(r < bearish, SELL, HOLD)).astype(np.int64)
    labels[np.isnan(r)] = UNKNOWN
    return labels


def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Average true range, Wilder-smoothed (TA-Lib's ATR); NaN for the first `period` bars."""
    import talib

    h, lo, c = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close))
    return np.asarray(talib.ATR(h, lo, c, timeperiod=period), dtype=np.float64)


def volatility(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, span: int, method: str
) -> np.ndarray:
    """A bar's volatility as a fraction of price, from that bar and the ones before it:
    ewm_std = the exponentially weighted std of close-to-close returns (span `span`);
    atr = ATR(span) / close. NaN until `span` bars exist."""
    close = np.asarray(close, dtype=np.float64)
    if method == "atr":
        ratio: np.ndarray = wilder_atr(high, low, close, span) / close
        return ratio
    returns = pd.Series(close).pct_change()
    return np.asarray(returns.ewm(span=span, min_periods=span).std().to_numpy(), dtype=np.float64)


def cusum_events(close: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """The symmetric CUSUM filter (Lopez de Prado, AFML 2.5.2.1): a bar is an event when the
    running sum of returns since the last event, in either direction, passes its threshold
    (the sums restart there). Bars without a threshold (NaN) are never events."""
    close = np.asarray(close, dtype=np.float64)
    returns = np.diff(close, prepend=np.nan) / np.concatenate([[np.nan], close[:-1]])
    events = np.zeros(len(close), dtype=bool)
    up = down = 0.0
    for i, (r, h) in enumerate(zip(returns.tolist(), np.asarray(threshold).tolist(), strict=True)):
        if r != r or h != h:  # NaN
            continue
        up, down = max(0.0, up + r), min(0.0, down + r)
        if up > h:
            up, events[i] = 0.0, True
        elif down < -h:
            down, events[i] = 0.0, True
    return events


@dataclass(frozen=True)
class Barriers:
    labels: np.ndarray  # BUY upper barrier first, SELL lower first, HOLD vertical; -1, -2
    ends: np.ndarray  # the bar each event's outcome is decided at (-1: no event / unknown)


def triple_barrier_labels(
    close: np.ndarray,
    vol: np.ndarray,
    pt_multiplier: float,
    sl_multiplier: float,
    max_holding_period: int,
    events: np.ndarray | None = None,
) -> Barriers:
    """For each event bar t: upper barrier close_t * (1 + pt_multiplier * vol_t), lower
    close_t * (1 - sl_multiplier * vol_t), vertical t + max_holding_period. The first close
    of bars t+1 .. t+max_holding_period at or beyond a horizontal barrier decides (BUY upper,
    SELL lower); none by the vertical one -> HOLD. UNKNOWN when vol_t is NaN or the series
    ends before either happens; NOT_EVENT for bars `events` leaves out."""
    close = np.asarray(close, dtype=np.float64)
    n, H = len(close), max_holding_period
    labels = np.full(n, UNKNOWN, dtype=np.int64)
    ends = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return Barriers(labels, ends)
    upper = close * (1.0 + pt_multiplier * vol)
    lower = close * (1.0 - sl_multiplier * vol)
    # The H closes after each bar (NaN past the end): a (n, H) view of a padded copy.
    padded = np.concatenate([close[1:], np.full(H, np.nan)])
    path = np.lib.stride_tricks.sliding_window_view(padded, H)[:n]
    with np.errstate(invalid="ignore"):
        hit_up, hit_down = path >= upper[:, None], path <= lower[:, None]
    first_up = np.where(hit_up.any(1), hit_up.argmax(1), H)
    first_down = np.where(hit_down.any(1), hit_down.argmax(1), H)
    bars = np.arange(n)
    full = bars + H < n  # the vertical barrier lies inside the series
    touched = np.minimum(first_up, first_down) < H
    labels[touched & (first_up < first_down)] = BUY
    labels[touched & (first_down < first_up)] = SELL
    labels[~touched & full] = HOLD
    ends[touched] = bars[touched] + 1 + np.minimum(first_up, first_down)[touched]
    ends[~touched & full] = bars[~touched & full] + H
    unknown = np.isnan(vol)
    labels[unknown], ends[unknown] = UNKNOWN, -1
    if events is not None:
        labels[~events], ends[~events] = NOT_EVENT, -1
    return Barriers(labels, ends)


def average_uniqueness(ends: np.ndarray) -> np.ndarray:
    """Each event's average uniqueness (AFML 4.4): the mean over the bars its outcome spans
    (t .. end) of 1 / the number of events spanning that bar. NaN for non-events."""
    ends = np.asarray(ends, dtype=np.int64)
    n = len(ends)
    starts = np.flatnonzero(ends >= 0)
    stops = ends[starts]
    concurrency = np.zeros(n + 1)
    np.add.at(concurrency, starts, 1.0)
    np.add.at(concurrency, stops + 1, -1.0)
    count = np.cumsum(concurrency)[:n]
    inverse = np.where(count > 0, 1.0 / np.maximum(count, 1.0), 0.0)
    prefix = np.concatenate([[0.0], np.cumsum(inverse)])
    out = np.full(n, np.nan)
    out[starts] = (prefix[stops + 1] - prefix[starts]) / (stops - starts + 1)
    return out


def atr_zigzag(close: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Confirmed pivots of a zigzag whose reversal is an absolute price move: bar i reverses
    the leg when it lies `thresholds[i]` (e.g. 3 x ATR_i) beyond the leg's running extreme.
    Bars without a threshold (NaN, warm-up) are skipped. Pivots ascending, alternating."""
    prices = np.asarray(close, dtype=np.float64).tolist()
    limits = np.asarray(thresholds, dtype=np.float64).tolist()
    pivots: list[int] = []
    trend, hi_i, lo_i = 0, -1, -1
    hi = lo = 0.0
    for i, (p, h) in enumerate(zip(prices, limits, strict=True)):
        if h != h:  # NaN: no threshold yet
            continue
        if hi_i < 0:
            hi = lo = p
            hi_i = lo_i = i
            continue
        if trend == 0:
            if p > hi:
                hi, hi_i = p, i
            if p < lo:
                lo, lo_i = p, i
            if p >= lo + h:
                pivots.append(lo_i)
                trend, hi, hi_i = 1, p, i
            elif p <= hi - h:
                pivots.append(hi_i)
                trend, lo, lo_i = -1, p, i
        elif trend == 1:
            if p > hi:
                hi, hi_i = p, i
            elif p <= hi - h:
                pivots.append(hi_i)
                trend, lo, lo_i = -1, p, i
        else:
            if p < lo:
                lo, lo_i = p, i
            elif p >= lo + h:
                pivots.append(lo_i)
                trend, hi, hi_i = 1, p, i
    return np.asarray(pivots, dtype=np.int64)


def regime_labels(
    close: np.ndarray,
    atr: np.ndarray,
    *,
    macro_atr_mult: float,
    micro_atr_mult: float,
    vol_crisis_threshold: float,
    vol_lookback: int,
    progression_tolerance: float,
) -> np.ndarray:
    """Four regimes, defined in docs/strategy-format.md:

    - VOLATILE when ATR_t / mean(ATR over the `vol_lookback` bars ending at t) is at least
      `vol_crisis_threshold` (the past only, so known at t);
    - otherwise by the macro leg t lies in, [pivot p, next pivot q) of a zigzag reversing
      by macro_atr_mult x ATR: its progression = |close_q - close_p| / the path through the
      micro pivots (a zigzag reversing by micro_atr_mult x ATR) between p and q. At least
      `progression_tolerance` -> TREND_UP or TREND_DOWN by the leg's sign, else RANGE;
    - UNKNOWN before the first macro pivot, after the last confirmed one, and while the
      ATR or its mean are warming up."""
    close = np.asarray(close, dtype=np.float64)
    atr = np.asarray(atr, dtype=np.float64)
    n = len(close)
    labels = np.full(n, UNKNOWN, dtype=np.int64)
    macro = atr_zigzag(close, macro_atr_mult * atr)
    micro = atr_zigzag(close, micro_atr_mult * atr)
    for p, q in zip(macro[:-1].tolist(), macro[1:].tolist(), strict=True):
        inside = micro[(micro > p) & (micro < q)]
        points = close[np.concatenate([[p], inside, [q]])]
        path = float(np.abs(np.diff(points)).sum())
        net = close[q] - close[p]
        progression = abs(net) / path if path > 0 else 0.0
        if progression >= progression_tolerance:
            labels[p:q] = TREND_UP if net > 0 else TREND_DOWN
        else:
            labels[p:q] = RANGE
    mean_atr = pd.Series(atr).rolling(vol_lookback, min_periods=vol_lookback).mean().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        volatile = atr / mean_atr >= vol_crisis_threshold
    labels[volatile] = VOLATILE
    labels[np.isnan(mean_atr)] = UNKNOWN
    return labels
