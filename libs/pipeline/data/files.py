"""Which file serves a symbol's bars at a timeframe: `{SYMBOL}_{TF}.csv` itself, else the
finest file whose bars divide the timeframe evenly (the loader resamples it).

The one resolver for everything that asks: the trainer's loader reads the file it names and the
API validates a submission against the same file, so a submit is checked against exactly what
the trainer will train on. The finest file wins because it holds the most exact bars (a 4h bar
resampled from 5m bars and one from 1h bars agree only when the 1h file is complete).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.pipeline import names
from libs.pipeline.data import timeframes as tf


@dataclass(frozen=True)
class DataSource:
    """The file to read for one (symbol, timeframe), and the timeframe to resample it to
    (None: the file holds that timeframe's bars as they are)."""

    path: Path
    resample_to: str | None


def data_file(data_dir: Path, symbol: str, timeframe: str) -> Path:
    return Path(data_dir) / f"{symbol}_{timeframe}.csv"


def files_for(data_dir: Path, symbol: str) -> list[str]:
    return sorted(p.name for p in Path(data_dir).glob(f"{symbol}_*.csv"))


def resolve_data_file(data_dir: Path, symbol: str, timeframe: str) -> DataSource | None:
    """The file serving (symbol, timeframe), or None when there is none (or the symbol or
    timeframe is not a safe, known name: nothing outside `data_dir` is ever named)."""
    if not names.SYMBOL.matches(symbol) or not tf.is_timeframe(timeframe):
        return None
    exact = data_file(data_dir, symbol, timeframe)
    if exact.is_file():
        return DataSource(exact, None)
    finer = [
        f
        for f in tf.TIMEFRAMES
        if tf.divides(f, timeframe) and data_file(data_dir, symbol, f).is_file()
    ]
    if not finer:
        return None
    finest = min(finer, key=tf.length)
    return DataSource(data_file(data_dir, symbol, finest), timeframe)
