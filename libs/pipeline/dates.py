"""Dates and timestamps given by people (CLI flags, API requests, training requests): strict
ISO 8601, always read as UTC.

One parser for every entry point, so a date the API accepts is the date the trainer trains
from. A value without a zone is UTC; a bare date used as an inclusive end covers that whole day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EXAMPLES = "2017-03-01 or 2017-03-01T12:00:00Z"


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text (`2017-03-01`, `2017-03-01T12:00`,
    `...Z`, `...+02:00`); ValueError for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"not ISO 8601 text: {text!r}")
    parsed = datetime.fromisoformat(text.strip())
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def is_bare_date(text: str) -> bool:
    """`2017-03-01`: a day, not an instant."""
    return len(text.strip()) == 10


def parse_bound(text: str | None, *, end: bool) -> datetime | None:
    """An inclusive range bound in UTC; None for no bound (an empty string is not a date).
    A bare date as `end` means the last instant of that day (microsecond resolution)."""
    if text is None:
        return None
    stamp = parse_timestamp(text)
    if end and is_bare_date(text):
        stamp = stamp + timedelta(days=1) - timedelta(microseconds=1)
    return stamp
