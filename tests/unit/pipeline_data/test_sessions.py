"""Daily bars by session: a known FX week, daylight saving, folded weekend prints, alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from libs.pipeline import dataset
from libs.pipeline.config.strategy import load_strategy
from libs.pipeline.data.ohlcv import resample
from libs.pipeline.data.sessions import KNOWN_AT

HOUR = pd.Timedelta(hours=1)


def hourly(first: str, last: str) -> pd.DataFrame:
    """Hourly bars, open = close of the bar before, close = its number (easy OHLC by hand)."""
    index = pd.date_range(first, last, freq="h", tz="UTC", name="timestamp")
    close = np.arange(1, len(index) + 1, dtype=float)
    return pd.DataFrame(
        {
            "open": close - 1,
            "high": close + 0.5,
            "low": close - 1.5,
            "close": close,
            "volume": np.ones(len(index)),
        },
        index=index,
    )


def fx_hours(first: str, last: str) -> pd.DataFrame:
    """`hourly`, without the FX weekend (Friday 17:00 to Sunday 17:00 New York)."""
    bars = hourly(first, last)
    local = bars.index.tz_convert("America/New_York")
    shifted = local + pd.Timedelta(hours=7)  # the FX day starts at 17:00: shift it to 00:00
    return bars[shifted.day_of_week < 5]


def test_a_winter_fx_week_gives_five_days_closing_at_17_new_york():
    # Sunday 22:00 UTC (17:00 EST) to the bar opening Friday 21:00 UTC (closing 17:00 EST)
    bars = hourly("2017-01-01 22:00", "2017-01-06 21:00")
    days = resample(bars, "1d", "fx", HOUR)
    opens = pd.date_range("2017-01-01 22:00", periods=5, freq="D", tz="UTC")
    assert days.index.equals(pd.DatetimeIndex(opens, name="timestamp"))
    # 24 hourly bars a day: day k holds bars 24k + 1 .. 24k + 24
    first = np.arange(5) * 24 + 1
    np.testing.assert_array_equal(days["open"], first - 1)
    np.testing.assert_array_equal(days["close"], first + 23)
    np.testing.assert_array_equal(days["high"], first + 23.5)
    np.testing.assert_array_equal(days["low"], first - 1.5)
    np.testing.assert_array_equal(days["volume"], 24)
    known = days.attrs[KNOWN_AT]
    assert [known[t] for t in days.index] == list(opens + pd.Timedelta(days=1))
    # UTC days would cut a 2-hour Sunday stub and a 22-hour Friday
    utc = resample(bars, "1d")
    assert len(utc) == 6 and utc["volume"].iloc[0] == 2


def test_a_summer_fx_day_follows_daylight_saving_and_weekend_prints_fold_into_friday():
    # EDT: the FX day opens 21:00 UTC. A stray Saturday print joins Friday's bar.
    bars = hourly("2017-07-02 21:00", "2017-07-07 20:00")
    stray = bars.iloc[[-1]].set_axis(pd.DatetimeIndex(["2017-07-08 12:00"], tz="UTC"))
    days = resample(pd.concat([bars, stray]), "1d", "fx", HOUR)
    assert list(days.index.hour) == [21] * 5
    assert days.index[0] == pd.Timestamp("2017-07-02 21:00", tz="UTC")
    assert days["volume"].tolist() == [24, 24, 24, 24, 25]
    friday = days.index[-1]
    assert days.attrs[KNOWN_AT][friday] == pd.Timestamp("2017-07-08 13:00", tz="UTC")


def test_fx_weeks_are_monday_to_friday():
    bars = fx_hours("2017-01-01 22:00", "2017-01-13 21:00")  # two weeks, no weekend bars
    weeks = resample(bars, "1w", "fx", HOUR)
    assert weeks.index.tolist() == [
        pd.Timestamp("2017-01-01 22:00", tz="UTC"),
        pd.Timestamp("2017-01-08 22:00", tz="UTC"),
    ]
    assert weeks["volume"].tolist() == [120, 120]
    assert weeks.attrs[KNOWN_AT][weeks.index[0]] == pd.Timestamp("2017-01-06 22:00", tz="UTC")


@pytest.mark.parametrize("session", ["utc", "fx"])
def test_hourly_rows_see_a_session_day_only_once_it_has_closed(strategy, bars_dir, session):
    bars = fx_hours("2017-01-01 22:00", "2017-04-28 20:00")  # across the switch to EDT
    doc = strategy()
    doc["training_data"]["timeframes"] = {"mode": "multi_timeframe", "list": ["1h", "1d"]}
    doc["training_data"]["session"] = session
    doc["indicators"] = [{"name": "sma", "feature_id": "sma_3", "period": 3}]
    doc["fuzzy_sets"] = {"sma_3": {"input_transform": {"type": "price_ratio"}, "x": [0, 1, 2]}}
    cfg = load_strategy(doc)
    assert cfg.snapshot()["training_data"]["session"] == session
    frames = dataset.load_frames(cfg, bars_dir(frame=bars), None, None)
    daily = frames["SYN"]["1d"]
    fuzzy = dataset.compute_fuzzy(cfg, frames, dataset.compute_indicators(cfg, frames))
    features = dataset.build_features(cfg, fuzzy)["SYN"]
    column = "1d_sma_3_x"
    # Tuesday 2017-02-07's FX day closes 22:00 UTC; the UTC day at midnight
    close = pd.Timestamp("2017-02-07 22:00" if session == "fx" else "2017-02-08 00:00", tz="UTC")
    bar = daily.index[daily.index < close][-1]
    value = fuzzy["SYN"]["1d"].loc[bar, "sma_3_x"].astype("float32")
    assert features.loc[close, column] == value
    assert features.loc[close - HOUR, column] != value
    if session == "fx":
        assert (daily["volume"] == 24).all()  # no stub days
    else:
        assert (daily["volume"] < 24).any()


def test_exchange_days_are_new_york_calendar_days_known_at_the_next_midnight():
    # 14:30-20:30 UTC = 09:30-15:30 EST: one exchange day; a Saturday print folds into Friday
    index = pd.DatetimeIndex(
        ["2017-01-05 14:30", "2017-01-05 20:30", "2017-01-06 14:30", "2017-01-07 15:00"],
        tz="UTC",
        name="timestamp",
    )
    bars = pd.DataFrame(
        {"open": [1.0, 2, 3, 4], "high": [2.0, 3, 4, 5], "low": [0.5, 1, 2, 3]}
        | {"close": [2.0, 3, 4, 5], "volume": [1.0, 1, 1, 1]},
        index=index,
    )
    days = resample(bars, "1d", "exchange", pd.Timedelta(minutes=30))
    midnight = pd.DatetimeIndex(["2017-01-05 05:00", "2017-01-06 05:00"], tz="UTC")
    assert days.index.equals(pd.DatetimeIndex(midnight, name="timestamp"))
    assert days["close"].tolist() == [3.0, 5.0] and days["volume"].tolist() == [2.0, 2.0]
    known = days.attrs[KNOWN_AT]
    assert known[midnight[0]] == pd.Timestamp("2017-01-06 05:00", tz="UTC")
    assert known[midnight[1]] == pd.Timestamp("2017-01-07 15:30", tz="UTC")  # the late print
