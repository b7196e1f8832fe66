"""Cheap checks on the OHLCV files (`{SYMBOL}_{TF}.csv`) before a submission is accepted.

Which file serves a symbol/timeframe is the pipeline's own answer
(`libs.pipeline.data.files.resolve_data_file`, the function the trainer's loader calls), so a
submission is checked against exactly the file the trainer will read. Here: that file's
first/last timestamps, read from the first data line and the last line without loading it.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from libs.pipeline.dates import parse_timestamp

DataBounds = tuple[datetime, datetime]


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
    return parse_timestamp(line.decode(errors="replace").split(",", 1)[0])
