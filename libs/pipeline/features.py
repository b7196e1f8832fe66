"""Model inputs per symbol: fuzzy columns of every timeframe, lagged, aligned on the base
timeframe's bars without look-ahead.

A bar's values are known only once it has closed. A row of the base timeframe (indexed by its
bar's open time t) therefore sees another timeframe's bar opened at T only when
T + length(timeframe) <= t: a 4h bar opened at 00:00 reaches the 1h rows from 04:00 on, a daily
bar from the next midnight. Lags are taken on each timeframe's own bars before alignment, so
`1d_..._lag_1` is yesterday's daily value, not the value one hour ago.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from libs.pipeline.data import timeframes as tf
from libs.pipeline.data.ohlcv import FIRST_USABLE
from libs.pipeline.data.sessions import KNOWN_AT


def with_lags(frame: pd.DataFrame, lookback: int) -> pd.DataFrame:
    """The columns, then `{column}_lag_{k}` (the value k bars earlier) for k = 1..lookback,
    as one float32 block (memberships need no more precision; a million rows stay small)."""
    values = frame.to_numpy(dtype=np.float32)
    rows, width = values.shape
    out = np.empty((rows, width * (lookback + 1)), dtype=np.float32)
    out[:, :width] = values
    for k in range(1, lookback + 1):
        block = out[:, k * width : (k + 1) * width]
        block[: min(k, rows)] = np.nan  # no bar k bars earlier yet
        block[k:] = values[: max(rows - k, 0)]
    lagged = [f"{c}_lag_{k}" for k in range(1, lookback + 1) for c in frame.columns]
    return pd.DataFrame(out, index=frame.index, columns=[*frame.columns, *lagged])


def align(
    frame: pd.DataFrame,
    timeframe: str,
    base_index: pd.DatetimeIndex,
    known: dict[pd.Timestamp, pd.Timestamp] | None = None,
) -> pd.DataFrame:
    """`frame` (one timeframe's bars) on the base rows, each row holding the latest bar that
    had closed by the row's time; rows before any closed bar are NaN. `known`: when each bar
    closes, for session bars of varying length (data/sessions.py); else open + length."""
    if known:
        known_at = pd.DatetimeIndex([known[t] for t in frame.index])
    else:
        known_at = pd.DatetimeIndex(frame.index) + tf.length(timeframe)
    return frame.set_axis(known_at).reindex(base_index, method="ffill")


def symbol_features(
    fuzzy_by_timeframe: dict[str, pd.DataFrame],
    timeframes: list[str],
    base_timeframe: str,
    lookback: int,
) -> pd.DataFrame:
    """One symbol's feature matrix on its base timeframe's index (warm-up rows trimmed only
    up to the first usable row; NaN rows are dropped when features meet labels)."""
    base = fuzzy_by_timeframe[base_timeframe]
    prefix = len(timeframes) > 1
    blocks = []
    for timeframe in timeframes:
        lagged = with_lags(fuzzy_by_timeframe[timeframe], lookback)
        if timeframe != base_timeframe:
            known = fuzzy_by_timeframe[timeframe].attrs.get(KNOWN_AT)
            lagged = align(lagged, timeframe, pd.DatetimeIndex(base.index), known)
        blocks.append(lagged.add_prefix(f"{timeframe}_") if prefix else lagged)
    features = blocks[0] if len(blocks) == 1 else pd.concat(blocks, axis=1)
    first_usable = base.attrs.get(FIRST_USABLE)
    if first_usable is not None:
        features = features.iloc[features.index.searchsorted(first_usable) :]
    return features
