"""Loading bar files: resampling, date ranges with warm-up, and errors that say what and where."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from libs.pipeline.config.strategy import load_strategy
from libs.pipeline.data.ohlcv import FIRST_USABLE, DataError, read_ohlcv, resample
from libs.pipeline.data.synth import write_ohlcv_csv
from libs.pipeline.dataset import load_frames


def hourly(values: list[float], start: str = "2021-01-04 00:00") -> pd.DataFrame:
    index = pd.date_range(start, periods=len(values), freq="1h", tz="UTC", name="timestamp")
    v = np.asarray(values, dtype=float)
    return pd.DataFrame(
        {
            "open": v,
            "high": v + 1,
            "low": v - 1,
            "close": v + 0.5,
            "volume": np.arange(len(v)) + 1.0,
        },
        index=index,
    )


def two_timeframes(strategy, base="1h", other="4h", history=0):
    doc = strategy()
    doc["training_data"]["timeframes"] = {"mode": "multi_timeframe", "list": [base, other]}
    doc["training_data"]["history_required"] = history
    return load_strategy(doc)


def test_resample_aggregates_each_bin_from_its_open():
    bars = hourly([10, 11, 12, 13, 20, 21, 22, 23, 30, 31])  # 00:00 .. 09:00
    four = resample(bars, "4h")
    assert [t.hour for t in four.index] == [0, 4, 8]
    assert four["open"].tolist() == [10, 20, 30]
    assert four["high"].tolist() == [14, 24, 32]
    assert four["low"].tolist() == [9, 19, 29]
    assert four["close"].tolist() == [13.5, 23.5, 31.5]
    assert four["volume"].tolist() == [1 + 2 + 3 + 4, 5 + 6 + 7 + 8, 9 + 10]


def test_resample_drops_empty_bins():
    bars = hourly([10, 11, 12, 13, 20, 21, 22, 23, 30, 31]).drop(
        pd.date_range("2021-01-04 04:00", periods=4, freq="1h", tz="UTC")
    )
    assert [t.hour for t in resample(bars, "4h").index] == [0, 8]


def test_daily_and_weekly_bins_open_at_midnight_and_monday():
    bars = hourly(list(range(24 * 9)), start="2021-01-06 00:00")  # a Wednesday
    days = resample(bars, "1d")
    assert len(days) == 9 and all(t.hour == 0 for t in days.index)
    weeks = resample(bars, "1w")
    assert [t.strftime("%a %Y-%m-%d") for t in weeks.index] == ["Mon 2021-01-04", "Mon 2021-01-11"]


def test_missing_coarser_timeframe_is_resampled_from_the_file(strategy, bars_dir):
    folder = bars_dir(frame=hourly(list(range(100, 300))))
    frames = load_frames(two_timeframes(strategy), folder, None, None)["SYN"]
    assert len(frames["1h"]) == 200 and len(frames["4h"]) == 50
    assert frames["4h"]["volume"].iloc[0] == 1 + 2 + 3 + 4


def test_missing_file_names_where_it_looked_and_what_exists(strategy, bars_dir):
    folder = bars_dir(symbol="SYN", timeframe="1d", bars=200)
    with pytest.raises(DataError) as info:
        load_frames(load_strategy(strategy()), folder, None, None)
    message = str(info.value)
    assert str(folder / "SYN_1h.csv") in message and "SYN_1d.csv" in message
    assert info.value.kind == "no_file"


def test_start_and_end_are_inclusive_and_warm_up_is_kept_before_start(strategy, bars_dir):
    folder = bars_dir(bars=24 * 20, start="2021-01-01")
    cfg = load_strategy(strategy())  # history_required 30; MACD(12, 26, 9) needs more
    assert cfg.history_bars == cfg.warmup_bars == 156  # 25 + 90 + 8 + 31 MACD, + 2 lags
    frames = load_frames(cfg, folder, "2021-01-12", "2021-01-15")["SYN"]["1h"]
    start = pd.Timestamp("2021-01-12", tz="UTC")
    assert frames.index[-1] == pd.Timestamp("2021-01-15 23:00", tz="UTC")  # bare date: whole day
    assert (frames.index < start).sum() == 156
    assert frames.attrs[FIRST_USABLE] == start


def test_without_start_the_first_history_required_bars_are_warm_up(strategy, bars_dir):
    folder = bars_dir(bars=400)
    doc = strategy()
    doc["training_data"]["history_required"] = 250  # more than the indicators need
    frames = load_frames(load_strategy(doc), folder, None, None)["SYN"]["1h"]
    assert frames.attrs[FIRST_USABLE] == frames.index[250]


def test_too_few_rows_says_how_many_and_how_many_needed(strategy, bars_dir):
    folder = bars_dir(bars=35)
    with pytest.raises(
        DataError, match=r"35 bars .* need at least 166 \(156 bars of warm-up"
    ) as info:
        load_frames(load_strategy(strategy()), folder, None, None)
    assert info.value.kind == "too_few_bars"


def test_bad_dates(strategy, bars_dir):
    folder = bars_dir(bars=200)
    cfg = load_strategy(strategy())
    with pytest.raises(DataError, match="start: 'soon' is not a date") as info:
        load_frames(cfg, folder, "soon", None)
    assert info.value.kind == "bad_date"
    with pytest.raises(DataError, match="is after end") as info:
        load_frames(cfg, folder, "2021-02-01", "2021-01-01")
    assert info.value.kind == "bad_date"


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (
            ["2021-01-01T00:00:00Z,1,2,0.5,1.5,10", "2021-01-01T01:00:00Z,1,,0.5,1.5,10"],
            r"column high has 1 NaN/empty value\(s\), first at 2021-01-01T01:00:00\+00:00",
        ),
        (
            ["2021-01-01T01:00:00Z,1,2,0.5,1.5,10", "2021-01-01T00:00:00Z,1,2,0.5,1.5,10"],
            "out-of-order timestamp at line 3",
        ),
        (
            ["2021-01-01T01:00:00Z,1,2,0.5,1.5,10", "2021-01-01T01:00:00Z,1,2,0.5,1.5,10"],
            "duplicate timestamp at line 3",
        ),
        (["2021-01-01T01:00:00Z,1,2,0.5,x,10"], "column close holds a non-number 'x' at line 2"),
        (["yesterday,1,2,0.5,1.5,10"], "line 2: 'yesterday' is not an ISO 8601 timestamp"),
    ],
)
def test_bad_files_are_refused_with_the_place(tmp_path, rows, match):
    path = tmp_path / "X_1h.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=match) as info:
        read_ohlcv(path)
    assert info.value.kind == "bad_file"


def test_missing_column_lists_what_was_found(tmp_path):
    path = tmp_path / "X_1h.csv"
    path.write_text("timestamp,open,high,low,close\n2021-01-01T00:00:00Z,1,2,0.5,1.5\n")
    with pytest.raises(DataError, match="missing column.*volume; found timestamp, open") as info:
        read_ohlcv(path)
    assert info.value.kind == "bad_file"


def test_written_bars_read_back(tmp_path):
    bars = hourly([1.5, 2.25, 3.125])
    back = read_ohlcv(write_ohlcv_csv(bars, tmp_path / "X_1h.csv"))
    pd.testing.assert_frame_equal(back, bars, check_index_type=False, check_freq=False)
    assert str(back.index.tz) == "UTC"
