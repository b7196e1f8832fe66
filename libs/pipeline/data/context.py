"""Series beside a symbol's own bars, for indicators with a `data_source`: another symbol's
bars, or a context_data series read from a local file (nothing is downloaded at run time).

Each series is a frame of bars (a one-value series as open = high = low = close = value) with
the time each bar becomes known. Alignment onto a frame's rows is as-of: a row, decided at its
bar's close, sees the latest series bar known by then -- never a value released later.

Files (`data_dir` is the data folder):

- a symbol (provider `ib`, or any symbol named as data_source): `{SYMBOL}_{TF}.csv`, read like
  a strategy symbol's file (a finer file is resampled); a bar is known at its close;
- FRED (`fred`): `context/fred_{SERIES}.csv` with `date,value` (and optionally `available_at`);
  a value is known at `available_at`, else by frequency: daily 1 day after its date, weekly 7
  days, monthly 46 days (FRED dates a month by its first day; it is published weeks after its
  end). Two series also give `yield_spread_{A}_{B}` = A - B, known when both are;
- CFTC Commitments of Traders (`cftc_cot`): `context/cot_{REPORT}.csv` with `date,net` (the
  non-commercial net position as of that Tuesday; optionally `available_at`), known at the
  Friday release, date + 3 days 21:00 UTC. Gives `cot_{REPORT}_net` and `cot_{REPORT}_net_pct`,
  the percentile (0-100) of the net position among the last 156 reports up to that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from libs.pipeline.config.context import ContextSeriesConfig
from libs.pipeline.data import timeframes as tf
from libs.pipeline.data.ohlcv import DataError, load_symbol
from libs.pipeline.data.sessions import KNOWN_AT

CONTEXT_DIR = "context"
RELEASE_LAG: dict[str, pd.DateOffset | pd.Timedelta] = {
    "daily": pd.Timedelta(days=1),
    "weekly": pd.Timedelta(days=7),
    "monthly": pd.Timedelta(days=46),
}
COT_RELEASE = pd.Timedelta(days=3, hours=21)
COT_PERCENTILE_REPORTS = 156


@dataclass(frozen=True)
class Series:
    bars: pd.DataFrame  # open, high, low, close, volume by the bar's own time
    known_at: pd.DatetimeIndex  # when each bar becomes known


def known_times(frame: pd.DataFrame, timeframe: str) -> pd.DatetimeIndex:
    """When each bar of a frame is known: its close (a session bar's own close time)."""
    known = frame.attrs.get(KNOWN_AT)
    if known:
        return pd.DatetimeIndex([known[t] for t in frame.index])
    return pd.DatetimeIndex(frame.index) + tf.length(timeframe)


def align_as_of(
    values: pd.DataFrame, known_at: pd.DatetimeIndex, decided_at: pd.DatetimeIndex
) -> np.ndarray:
    """For each decision time, the row of `values` known latest at or before it (NaN before
    the first), as an array in `decided_at` order."""
    order = np.argsort(known_at.asi8, kind="stable")
    keys = known_at.asi8[order]
    rows = np.searchsorted(keys, decided_at.asi8, side="right") - 1
    data = values.to_numpy(dtype=np.float64)[order]
    out = np.full((len(decided_at), data.shape[1]), np.nan)
    seen = rows >= 0
    out[seen] = data[rows[seen]]
    return out


def _as_bars(values: pd.Series) -> pd.DataFrame:
    v = values.to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {"open": v, "high": v, "low": v, "close": v, "volume": np.zeros(len(v))},
        index=values.index,
    )


def _read_points(path: Path, column: str, name: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"context series {name}: no file {path}", "no_file")
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"context series {name}: cannot read {path}: {exc}", "bad_file") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in ("date", column) if c not in raw.columns]
    if missing:
        raise DataError(
            f"context series {name}: {path} has no column {', '.join(missing)} "
            f"(needs date,{column}[,available_at])",
            "bad_file",
        )
    try:
        dates = pd.to_datetime(raw["date"], utc=True)
        values = pd.to_numeric(raw[column], errors="raise")
        available = pd.to_datetime(raw["available_at"], utc=True) if "available_at" in raw else None
    except (ValueError, TypeError) as exc:
        raise DataError(f"context series {name}: {path}: {exc}", "bad_file") from None
    frame = pd.DataFrame({"value": values.to_numpy(dtype=np.float64)}, index=dates)
    if available is not None:
        frame["available_at"] = available.to_numpy()
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame.dropna(subset=["value"])


def _fred(data_dir: Path, series_id: str, frequency: str) -> tuple[pd.Series, pd.DatetimeIndex]:
    name = f"fred_{series_id}"
    frame = _read_points(Path(data_dir) / CONTEXT_DIR / f"{name}.csv", "value", name)
    known = (
        pd.DatetimeIndex(frame["available_at"])
        if "available_at" in frame
        else pd.DatetimeIndex(frame.index) + RELEASE_LAG[frequency]
    )
    return frame["value"], known


def context_series(data_dir: Path, entry: ContextSeriesConfig, name: str) -> Series:
    """The series `name` of a context_data entry, read from its file."""
    if entry.provider == "fred":
        ids = entry.series or []
        if name.startswith("yield_spread_"):
            (a, known_a), (b, known_b) = (_fred(data_dir, s, str(entry.frequency)) for s in ids)
            # On every date either changes, each as known by then: A - B, known when both are.
            stamps = known_a.union(known_b).sort_values()
            both = align_as_of(a.to_frame(), known_a, stamps)[:, 0]
            both = both - align_as_of(b.to_frame(), known_b, stamps)[:, 0]
            values = pd.Series(both, index=stamps).dropna()
            return Series(_as_bars(values), pd.DatetimeIndex(values.index))
        values, known = _fred(data_dir, name.removeprefix("fred_"), str(entry.frequency))
        return Series(_as_bars(values), known)
    if entry.provider == "cftc_cot":
        stem = f"cot_{entry.report}"
        frame = _read_points(Path(data_dir) / CONTEXT_DIR / f"{stem}.csv", "net", stem)
        known = (
            pd.DatetimeIndex(frame["available_at"])
            if "available_at" in frame
            else pd.DatetimeIndex(frame.index).normalize() + COT_RELEASE
        )
        net = frame["value"]
        if name.endswith("_net_pct"):
            window = net.rolling(COT_PERCENTILE_REPORTS, min_periods=1)
            net = window.apply(lambda w: 100.0 * (w <= w[-1]).mean(), raw=True)
        return Series(_as_bars(net), known)
    raise ValueError(f"context_series: {entry.provider} series are bars (symbol_bars)")


def symbol_bars(data_dir: Path, symbol: str, timeframe: str, session: str) -> Series:
    """Another symbol's bars at `timeframe`, its whole file (resampled when needed)."""
    frames = load_symbol(Path(data_dir), symbol, [timeframe], timeframe, None, None, 0, session)  # type: ignore[arg-type]
    frame = frames[timeframe]
    return Series(frame, known_times(frame, timeframe))
