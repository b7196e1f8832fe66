"""Synthetic OHLCV bars: a seeded geometric random walk, vectorised (millions of bars in
seconds), for benchmarks and tests that need more data than the samples hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from libs.pipeline.data import timeframes as tf


def synth_ohlcv(
    bars: int,
    timeframe: str = "1h",
    *,
    seed: int = 0,
    start: str = "2020-01-01",
    price: float = 100.0,
    volatility: float = 0.002,
) -> pd.DataFrame:
    """`bars` consecutive bars from `start`; close-to-close log returns ~ N(0, volatility).

    Each bar opens at the previous close; high/low reach beyond the body by a half-normal
    excursion, so low <= min(open, close) <= max(open, close) <= high always holds."""
    if bars < 1:
        raise ValueError(f"bars: must be >= 1, got {bars}")
    if not tf.is_timeframe(timeframe):
        raise ValueError(f"timeframe: unknown {timeframe!r}; valid: {', '.join(tf.TIMEFRAMES)}")
    if price <= 0 or volatility <= 0:
        raise ValueError("price and volatility must be > 0")
    rng = np.random.default_rng(seed)
    log_close = np.log(price) + np.cumsum(rng.normal(0.0, volatility, bars))
    close = np.exp(log_close)
    open_ = np.empty(bars)
    open_[0] = price
    open_[1:] = close[:-1]
    wick = np.abs(rng.normal(0.0, volatility / 2, (2, bars)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = np.round(rng.lognormal(10.0, 0.5, bars))
    first = pd.Timestamp(start, tz="UTC")
    steps = pd.to_timedelta(np.arange(bars, dtype=np.int64) * tf.length(timeframe).value, "ns")
    index = pd.DatetimeIndex(first + steps, name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def write_ohlcv_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write bars in the data/ CSV format (ISO 8601 UTC timestamps with a Z)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    index = pd.DatetimeIndex(frame.index).tz_convert("UTC").tz_localize(None)
    stamps = np.datetime_as_string(index.to_numpy(dtype="datetime64[ns]"), unit="s")
    out = frame.set_axis(pd.Index(np.char.add(stamps, "Z"), name="timestamp"))
    tmp = path.with_name(path.name + ".tmp")
    out.round(6).to_csv(tmp)
    tmp.replace(path)
    return path
