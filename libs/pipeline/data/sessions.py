"""Daily and weekly bars cut by a session convention, and when each such bar is known.

- `utc`: calendar days at midnight UTC, weeks from Monday 00:00 UTC (pandas' bins). Right for
  data whose trading day ends near midnight UTC; FX bars would leave 2-hour Sunday stubs.
- `fx`: the FX day closes at 17:00 New York (daylight saving followed): the day dated D runs
  from 17:00 New York on D - 1 to 17:00 on D, so Sunday evening's bars open Monday's day;
  bars of a Saturday or Sunday day (rare prints) are folded into Friday's. Weeks are the
  days of one Monday-to-Friday week.
- `exchange`: calendar days in the exchange's zone (New York), weekends folded into Friday;
  a day is known from the next local midnight.

A session bar is labelled by its open (the session's nominal start, as every bar is) and
becomes known at the later of its nominal end and its last finer bar's close: rows see it only
then (`KNOWN_AT` in the frame's attrs, read by the alignment), never while it is forming.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

Session = Literal["utc", "fx", "exchange"]
SESSIONS: tuple[str, ...] = ("utc", "fx", "exchange")
NEW_YORK = "America/New_York"
# attrs key of a session-resampled frame: {bar open time: the time the bar is known}
KNOWN_AT = "known_at"

_FOLD = {5: 1, 6: 2}  # Saturday, Sunday -> days back to Friday


def _trading_days(
    index: pd.DatetimeIndex, session: Session
) -> tuple[pd.DatetimeIndex, pd.Timedelta]:
    """The trading date of each bar (naive dates) and the hour the day starts, local time."""
    local = index.tz_convert(NEW_YORK).tz_localize(None)
    if session == "fx":
        day_start = pd.Timedelta(hours=-7)  # 17:00 the day before
        dates = (local + pd.Timedelta(hours=7)).normalize()
    else:
        day_start = pd.Timedelta(0)
        dates = local.normalize()
    back = np.array([_FOLD.get(d, 0) for d in dates.day_of_week])
    return pd.DatetimeIndex(dates - pd.to_timedelta(back, unit="D")), day_start


def _local(naive: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return naive.tz_localize(NEW_YORK, ambiguous="NaT", nonexistent="shift_forward").tz_convert(
        "UTC"
    )


def resample_session(
    frame: pd.DataFrame, timeframe: str, session: Session, bar: pd.Timedelta
) -> pd.DataFrame:
    """1d or 1w bars of `frame` (finer bars of length `bar`) by `session` (fx or exchange)."""
    dates, day_start = _trading_days(pd.DatetimeIndex(frame.index), session)
    if timeframe == "1w":
        keys = pd.DatetimeIndex(dates - pd.to_timedelta(dates.day_of_week, unit="D"))
        span = pd.Timedelta(days=5)  # Monday's start to Friday's end
    else:
        keys, span = dates, pd.Timedelta(days=1)
    grouped = frame.groupby(keys.to_numpy(), sort=True)
    out = grouped.agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    starts = pd.DatetimeIndex(out.index)
    opened = _local(starts + day_start)
    nominal_end = _local(starts + day_start + span)
    times = pd.Series(pd.DatetimeIndex(frame.index), index=frame.index)
    last_close = pd.DatetimeIndex(times.groupby(keys.to_numpy(), sort=True).last()) + bar
    known = np.maximum(nominal_end, last_close)
    out.index = pd.DatetimeIndex(opened, name=frame.index.name)
    out.attrs[KNOWN_AT] = dict(zip(out.index, pd.DatetimeIndex(known), strict=True))
    return out
