"""Feature construction: no look-ahead across timeframes, lag semantics, column naming."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from libs.pipeline import dataset
from libs.pipeline.config.strategy import load_strategy
from libs.pipeline.data.synth import synth_ohlcv
from libs.pipeline.indicators.compute import compute_frame

HOUR = pd.Timedelta(hours=1)


def features_for(cfg, folder) -> pd.DataFrame:
    frames = dataset.load_frames(cfg, folder, None, None)
    fuzzy = dataset.compute_fuzzy(cfg, frames, dataset.compute_indicators(cfg, frames))
    return dataset.build_features(cfg, fuzzy)["SYN"]


@pytest.fixture
def multi_tf(strategy):
    doc = strategy()
    doc["training_data"]["timeframes"] = {"mode": "multi_timeframe", "list": ["1h", "4h", "1d"]}
    # A 3-bar RSI (id kept) and no MACD: converged within 21 daily bars, so 60 days of hourly
    # bars leave daily features to test.
    doc["indicators"] = [
        {"name": "rsi", "feature_id": "rsi_14", "period": 3},
        {"name": "sma", "feature_id": "sma_20", "period": 20},
    ]
    del doc["fuzzy_sets"]["macd_12_26_9.histogram"]
    return load_strategy(doc)


@pytest.mark.parametrize("cut", ["2021-02-10 13:00", "2021-02-10 15:00", "2021-02-11 00:00"])
def test_no_look_ahead_changing_bars_after_t_changes_nothing_at_or_before_t(
    multi_tf, bars_dir, tmp_path, cut
):
    bars = synth_ohlcv(24 * 60, "1h", seed=5, start="2021-01-04", volatility=0.004)
    before = features_for(multi_tf, bars_dir(frame=bars))
    t = pd.Timestamp(cut, tz="UTC")
    later = bars.index > t
    changed = bars.copy()
    changed.loc[later, ["open", "high", "low", "close"]] *= np.linspace(1.05, 0.9, later.sum())[
        :, None
    ]
    after = features_for(multi_tf, bars_dir(frame=changed))

    assert any(c.startswith("4h_") for c in before) and any(c.startswith("1d_") for c in before)
    past = before.index <= t
    pd.testing.assert_frame_equal(before[past], after[past])
    # The change did reach the features after t (the comparison above is not vacuous).
    assert not np.allclose(before[~past].to_numpy(), after[~past].to_numpy(), equal_nan=True)


def test_a_coarser_bar_reaches_base_rows_only_once_closed(multi_tf, bars_dir):
    bars = synth_ohlcv(24 * 60, "1h", seed=5, start="2021-01-04", volatility=0.004)
    folder = bars_dir(frame=bars)
    features = features_for(multi_tf, folder)
    frames = dataset.load_frames(multi_tf, folder, None, None)
    fuzzy = dataset.compute_fuzzy(multi_tf, frames, dataset.compute_indicators(multi_tf, frames))
    # features are float32 (memberships need no more precision)
    four, daily = fuzzy["SYN"]["4h"].astype("float32"), fuzzy["SYN"]["1d"].astype("float32")
    column = "rsi_14_high"
    day = pd.Timestamp("2021-02-10", tz="UTC")
    # 4h bar opened 12:00 closes 16:00: rows 12:00..15:00 still see the 08:00 bar.
    for row, bar in [("15:00", "08:00"), ("16:00", "12:00"), ("19:00", "12:00")]:
        stamp = day + pd.Timedelta(row + ":00")
        assert (
            features.loc[stamp, f"4h_{column}"] == four.loc[day + pd.Timedelta(bar + ":00"), column]
        )
    # The daily bar of the 10th is visible from the 11th 00:00, not during the 10th.
    assert (
        features.loc[day + 23 * HOUR, f"1d_{column}"]
        == daily.loc[day - pd.Timedelta(days=1), column]
    )
    assert features.loc[day + 24 * HOUR, f"1d_{column}"] == daily.loc[day, column]


def test_lags_are_taken_on_each_timeframes_own_bars(multi_tf, bars_dir):
    features = features_for(multi_tf, bars_dir(frame=synth_ohlcv(24 * 60, "1h", seed=2)))
    row = pd.Timestamp("2020-02-10 13:00", tz="UTC")
    base = "1h_sma_20_below"
    assert features.loc[row, f"{base}_lag_1"] == features.loc[row - HOUR, base]
    assert features.loc[row, f"{base}_lag_2"] == features.loc[row - 2 * HOUR, base]
    daily = "1d_rsi_14_low"
    assert features.loc[row, f"{daily}_lag_1"] == features.loc[row - 24 * HOUR, daily]
    assert features.loc[row, f"{daily}_lag_2"] == features.loc[row - 48 * HOUR, daily]


def test_column_names_single_timeframe(strategy, bars_dir):
    features = features_for(load_strategy(strategy()), bars_dir(bars=300))
    assert list(features.columns[:6]) == [
        "rsi_14_low",
        "rsi_14_high",
        "macd_12_26_9.histogram_neg",
        "macd_12_26_9.histogram_pos",
        "sma_20_below",
        "sma_20_above",
    ]
    assert "sma_20_above_lag_2" in features and "sma_20_above_lag_3" not in features
    assert features.shape[1] == 6 * 3


def test_features_start_at_the_first_usable_row(strategy, bars_dir):
    folder = bars_dir(bars=300)
    cfg = load_strategy(strategy())
    features = features_for(cfg, folder)
    frames = dataset.load_frames(cfg, folder, None, None)
    assert cfg.history_bars > cfg.history_required  # the indicators need more than asked
    assert features.index[0] == frames["SYN"]["1h"].index[cfg.history_bars]


def test_features_after_the_derived_warm_up_do_not_depend_on_where_the_file_starts(
    strategy, bars_dir, tmp_path
):
    """The same bars, the file starting 500 bars earlier: every row both runs keep has the
    same features (to the convergence tolerance); without the derived warm-up it would not."""
    bars = synth_ohlcv(1500, "1h", seed=9, start="2021-01-04", volatility=0.004)
    cfg = load_strategy(strategy())  # RSI(14), MACD(12, 26, 9), SMA(20)
    longer = features_for(cfg, bars_dir(frame=bars))
    shorter = features_for(cfg, bars_dir(frame=bars.iloc[500:]))
    assert shorter.index[0] == bars.index[500 + cfg.history_bars]
    common = longer.loc[shorter.index]
    np.testing.assert_allclose(common.to_numpy(), shorter.to_numpy(), atol=2e-3)
    # what TA-Lib alone gives right after its own lookback differs by whole RSI points
    early = bars.iloc[500:600]
    raw_long = compute_frame(cfg.indicators, bars)["rsi_14"].loc[early.index]
    raw_short = compute_frame(cfg.indicators, early)["rsi_14"]
    assert np.nanmax(np.abs(raw_long - raw_short)) > 1.0
