"""OHLCV bars from `data/{SYMBOL}_{TF}.csv`: read, check, resample, cut to a date range.

The CSV has `timestamp` (ISO 8601, UTC, the bar's open time), `open`, `high`, `low`, `close`,
`volume`, one bar per row, ascending. Bad files are refused with an error that says what is
wrong and where, never repaired silently: a training on quietly re-sorted or gap-filled data
would be a training on data nobody looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from libs.pipeline import dates
from libs.pipeline.data import timeframes as tf
from libs.pipeline.data.files import data_file, files_for, resolve_data_file
from libs.pipeline.data.sessions import Session, resample_session

COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")

# attrs key on every loaded frame: the first base-timeframe row that may be used for training
# (history_required bars after the first loaded bar, never before `start`).
FIRST_USABLE = "first_usable"

# Fewer usable rows than this cannot be split into train/validation/test meaningfully.
MIN_USABLE_ROWS = 10


DataErrorKind = Literal[
    "no_file",  # no file serves a symbol at a timeframe (not even a finer one to resample)
    "bad_file",  # a file that cannot be read or fails the checks (columns, numbers, timestamps)
    "bad_date",  # a date bound that is not a date, or a start after the end
    "too_few_bars",  # the requested date range holds too few bars to train on
    "unusable",  # bars that leave no rows to train on or predict with (warm-up, splits)
    "features",  # features that differ from what the model or another symbol has
    "weak_split",  # a split too small or one-sided to train or judge a model on (the guards)
]


class DataError(ValueError):
    """Market data that cannot be used, with what is wrong and where. `kind` says which
    problem it is, as data, so callers (the API) can place it without reading the message."""

    def __init__(self, message: str, kind: DataErrorKind) -> None:
        self.kind: DataErrorKind = kind
        super().__init__(message)


def _first(index: pd.Index, mask: np.ndarray, limit: int = 3) -> str:
    return ", ".join(ts.isoformat() for ts in index[mask][:limit])


def _numeric(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    out = {}
    for column in COLUMNS:
        values = pd.to_numeric(raw[column], errors="coerce")
        bad = values.isna() & raw[column].notna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise DataError(
                f"{path}: column {column} holds a non-number {raw[column].iloc[row]!r} "
                f"at line {row + 2}",
                "bad_file",
            )
        out[column] = values.astype("float64")
    return pd.DataFrame(out)


def read_ohlcv(path: Path) -> pd.DataFrame:
    """One CSV as a float64 OHLCV frame on a UTC DatetimeIndex named `timestamp`, checked."""
    try:
        header = pd.read_csv(path, nrows=0).columns
        names = {str(c): str(c).strip().lower() for c in header}
        missing = [c for c in ("timestamp", *COLUMNS) if c not in names.values()]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(names)} "
                "(expected timestamp, open, high, low, close, volume)",
                "bad_file",
            )
        dtypes = {k: ("float64" if v in COLUMNS else str) for k, v in names.items()}
        try:
            raw = pd.read_csv(path, dtype=dtypes).rename(columns=names)
        except ValueError:  # a non-number somewhere: read as text to say where
            raw = pd.read_csv(path, dtype=str).rename(columns=names)
            raw = pd.concat([raw[["timestamp"]], _numeric(raw, path)], axis=1)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc})", "bad_file") from exc
    try:
        index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601"))
    except (ValueError, TypeError):
        parsed = pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601", errors="coerce")
        row = int(np.argmax(parsed.isna().to_numpy()))
        raise DataError(
            f"{path}: line {row + 2}: {raw['timestamp'].iloc[row]!r} is not an ISO 8601 "
            "timestamp (e.g. 2017-01-02T00:00:00Z)",
            "bad_file",
        ) from None
    frame = raw[list(COLUMNS)].set_axis(index.rename("timestamp"))
    _check(frame, path)
    return frame


def _check(frame: pd.DataFrame, path: Path) -> None:
    index = frame.index
    if index.hasnans:
        line = int(np.argmax(index.isna())) + 2
        raise DataError(f"{path}: empty timestamp at line {line}", "bad_file")
    for column in COLUMNS:
        nan = frame[column].isna().to_numpy()
        if nan.any():
            raise DataError(
                f"{path}: column {column} has {int(nan.sum())} NaN/empty value(s), first at "
                f"{_first(index, nan)}",
                "bad_file",
            )
    steps = np.diff(pd.DatetimeIndex(index).asi8)
    if (steps <= 0).any():
        row = int(np.argmax(steps <= 0))
        kind = "duplicate" if steps[row] == 0 else "out-of-order"
        raise DataError(
            f"{path}: {kind} timestamp at line {row + 3}: {index[row + 1].isoformat()} "
            f"follows {index[row].isoformat()} (rows must be unique and ascending)",
            "bad_file",
        )


def resample(
    frame: pd.DataFrame, timeframe: str, session: Session = "utc", bar: pd.Timedelta | None = None
) -> pd.DataFrame:
    """Bars of `timeframe` from finer bars (of length `bar`): bins [open, open + length),
    labelled by their open, aligned to the epoch (so 4h bars open at 00, 04, ...); bins
    without bars are dropped. Days and weeks follow `session` (data/sessions.py)."""
    if session != "utc" and timeframe in ("1d", "1w"):
        step = bar if bar is not None else pd.Timedelta(pd.Series(frame.index).diff().median())
        return resample_session(frame, timeframe, session, step)
    # Daily and weekly bins keep pandas' own anchoring (midnight, Monday).
    origin = "epoch" if tf.length(timeframe) < pd.Timedelta(days=1) else "start_day"
    out = frame.resample(
        tf.resample_rule(timeframe), label="left", closed="left", origin=origin
    ).agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    return out[out["close"].notna()]


def parse_bound(text: str | None, *, end: bool, label: str) -> pd.Timestamp | None:
    """An inclusive date bound in UTC (dates.parse_bound); a bare date as `end` means the
    whole of that day."""
    try:
        stamp = dates.parse_bound(text, end=end)
    except ValueError as exc:
        raise DataError(
            f"{label}: {text!r} is not a date; use ISO 8601 like 2017-03-01 or 2017-03-01T12:00",
            "bad_date",
        ) from exc
    return None if stamp is None else pd.Timestamp(stamp)


def _source(data_dir: Path, symbol: str, timeframe: str) -> tuple[Path, str | None]:
    """The file to read for `timeframe`, and the timeframe to resample it to (None: as is)."""
    found = resolve_data_file(data_dir, symbol, timeframe)
    if found is not None:
        return found.path, found.resample_to
    exact = data_file(data_dir, symbol, timeframe)
    present = ", ".join(files_for(data_dir, symbol)) or "none"
    raise DataError(
        f"no {timeframe} data for {symbol}: looked for {exact} (and for a finer file to "
        f"resample from); files for {symbol} in {Path(data_dir).resolve()}: {present}",
        "no_file",
    )


def load_symbol(
    data_dir: Path,
    symbol: str,
    timeframes: Sequence[str],
    base_timeframe: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    history_required: int,
    session: Session = "utc",
) -> dict[str, pd.DataFrame]:
    """timeframe -> bars, each with `history_required` bars of warm-up before `start`."""
    whole: dict[Path, pd.DataFrame] = {}
    read: dict[Path, pd.DataFrame] = {}  # cut at `end` before resampling: nothing after it
    frames: dict[str, pd.DataFrame] = {}
    for timeframe in timeframes:
        path, resample_to = _source(data_dir, symbol, timeframe)
        if path not in read:
            whole[path] = read_ohlcv(path)
            read[path] = whole[path] if end is None else whole[path][whole[path].index <= end]
        frame = (
            read[path]
            if resample_to is None
            else resample(read[path], resample_to, session, _bar_length(path))
        )
        begin = 0 if start is None else int(frame.index.searchsorted(start, side="left"))
        frame = frame.iloc[max(0, begin - history_required) :]
        needed = history_required + MIN_USABLE_ROWS
        if len(frame) < (needed if timeframe == base_timeframe else 1):
            origin = f"resampled from {path}" if resample_to else str(path)
            raise DataError(
                f"{symbol} {timeframe}: {len(frame)} bars ({origin}) in the requested range, "
                f"need at least {needed} ({history_required} bars of warm-up: history_required "
                f"or what the indicators need to converge, + {MIN_USABLE_ROWS} usable rows); "
                f"the file covers {_span(whole[path])}",
                "too_few_bars",
            )
        frames[timeframe] = frame.copy()
    first_usable = frames[base_timeframe].index[history_required]
    for frame in frames.values():
        frame.attrs[FIRST_USABLE] = first_usable
    return frames


def _bar_length(path: Path) -> pd.Timedelta | None:
    """The bar length a data file's name says (`EURUSD_1h.csv` -> 1 hour)."""
    name = path.stem.rsplit("_", 1)[-1]
    return tf.length(name) if tf.is_timeframe(name) else None


def _span(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "no bars"
    return f"{frame.index[0].isoformat()} .. {frame.index[-1].isoformat()} ({len(frame)} bars)"
