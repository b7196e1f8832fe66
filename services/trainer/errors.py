"""How a failed training is described in its Failed event.

Bad input -- an unknown strategy field, missing data, bad dates, a device this trainer lacks --
fails the same way on every attempt, so it is `retryable=False` and the request is acked: a bad
request must never crash-loop. The pipeline raises those as ValueError subclasses
(StrategyConfigError, DataError, DeviceError, pydantic's ValidationError). Anything else (out of
memory, a full disk, a torch runtime error) may well pass on a resubmit: `retryable=True`.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from datetime import datetime

from libs.pipeline.dates import parse_bound

TRACEBACK_EXCERPT_CHARS = 2_000
_INPUT_ERRORS = (ValueError, LookupError, TypeError)


class RequestError(ValueError):
    """The request itself is unusable (e.g. a date that is not a date)."""


@dataclass(frozen=True)
class FailureInfo:
    error_type: str
    message: str
    retryable: bool
    traceback: str | None


# A Failed's message is read by people; an error text of megabytes would also make the event
# too large for the bus (libs/events/bus/messages.MAX_EVENT_BYTES), so it is cut.
MAX_MESSAGE_CHARS = 4000


def describe_failure(error: BaseException) -> FailureInfo:
    message = str(error).strip() or type(error).__name__
    if len(message) > MAX_MESSAGE_CHARS:
        message = f"{message[:MAX_MESSAGE_CHARS]}... ({len(message)} characters, cut)"
    return FailureInfo(
        error_type=type(error).__name__,
        message=message,
        retryable=not isinstance(error, _INPUT_ERRORS),
        traceback=traceback_excerpt(error),
    )


def traceback_excerpt(error: BaseException) -> str:
    """The end of the traceback (where it went wrong), capped so events stay small."""
    text = "".join(traceback.format_exception(error)).rstrip()
    if len(text) > TRACEBACK_EXCERPT_CHARS:
        text = "…" + text[-TRACEBACK_EXCERPT_CHARS:]
    return text


def check_date(field: str, value: str | None, *, end: bool = False) -> datetime | None:
    """The bound the pipeline will use (libs.pipeline.dates; a bare end date is its whole day)."""
    try:
        return parse_bound(value, end=end)
    except ValueError:
        raise RequestError(
            f"{field}: {value!r} is not an ISO 8601 date (expected YYYY-MM-DD or "
            "YYYY-MM-DDTHH:MM[:SS])"
        ) from None


def check_dates(start: str | None, end: str | None) -> None:
    first, last = check_date("start_date", start), check_date("end_date", end, end=True)
    if first is not None and last is not None and first > last:
        raise RequestError(f"start_date {start} is after end_date {end}")
