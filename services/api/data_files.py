"""Cheap checks on the OHLCV files (`{SYMBOL}_{TF}.csv`) before a submission is accepted.

Which file serves a symbol/timeframe (the file itself, or a finer one the pipeline resamples
from), and its first/last timestamps, read from the first data line and the last line without
loading the file. Paths never leave the data folder.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

DataBounds = tuple[datetime, datetime]

_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_TIMEFRAME = re.compile(r"^(\d+)([mhdw])$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def timeframe_seconds(timeframe: str) -> int | None:
    match = _TIMEFRAME.match(timeframe.strip().lower())
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None


def find_data_file(data_dir: Path, symbol: str, timeframe: str) -> Path | None:
    """The file for (symbol, timeframe), else the coarsest finer file it divides evenly."""
    if not (_SAFE_NAME.match(symbol) and _SAFE_NAME.match(timeframe)) or ".." in symbol:
        return None
    exact = data_dir / f"{symbol}_{timeframe}.csv"
    if exact.is_file():
        return exact
    wanted = timeframe_seconds(timeframe)
    if wanted is None or not data_dir.is_dir():
        return None
    finer: list[tuple[int, Path]] = []
    for path in data_dir.glob(f"{symbol}_*.csv"):
        seconds = timeframe_seconds(path.stem[len(symbol) + 1 :])
        if seconds and seconds < wanted and wanted % seconds == 0:
            finer.append((seconds, path))
    return max(finer)[1] if finer else None


def data_bounds(path: Path) -> DataBounds:
    """(first, last) bar timestamps, UTC. Reads two lines, whatever the file size."""
    with path.open("rb") as handle:
        handle.readline()  # header
        first_line = handle.readline()
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 4096))
        last_line = handle.read().rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    return _timestamp(first_line), _timestamp(last_line)


def _timestamp(line: bytes) -> datetime:
    text = line.decode(errors="replace").split(",", 1)[0].strip()
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
