"""Time split per symbol, scaler fitted on train rows only, and the end-to-end data phases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from libs.pipeline import dataset
from libs.pipeline.config.strategy import load_strategy
from libs.pipeline.data.ohlcv import DataError
from libs.pipeline.split import Scaler, split_sizes


def run_phases(cfg, folder, start=None, end=None):
    frames = dataset.load_frames(cfg, folder, start, end)
    fuzzy = dataset.compute_fuzzy(cfg, frames, dataset.compute_indicators(cfg, frames))
    parts = dataset.combine(dataset.build_features(cfg, fuzzy), dataset.build_labels(cfg, frames))
    return parts, dataset.split_and_scale(cfg, parts)


@pytest.fixture
def two_symbols(strategy, bars_dir):
    bars_dir(symbol="AAA", bars=500, seed=1, start="2021-01-01")
    folder = bars_dir(symbol="BBB", bars=400, seed=2, start="2021-03-01")
    doc = strategy()
    doc["training_data"]["symbols"] = {"mode": "multi_symbol", "list": ["AAA", "BBB"]}
    return load_strategy(doc), folder


def test_split_sizes():
    assert split_sizes(100, 0.7, 0.15) == (70, 15, 15)
    assert split_sizes(7, 0.6, 0.2) == (4, 1, 2)


def test_each_symbol_is_split_in_time_order(two_symbols):
    cfg, folder = two_symbols
    parts, split = run_phases(cfg, folder)
    for part in parts:
        index = split.index[part.symbol]
        assert index["train"].max() < index["validation"].min()
        assert index["validation"].max() < index["test"].min()
        counts = split.rows[part.symbol]
        assert sum(counts.values()) == len(part.X)
        assert counts == dict(
            zip(("train", "validation", "test"), split_sizes(len(part.X), 0.6, 0.2), strict=True)
        )
    assert len(split.X_train) == sum(r["train"] for r in split.rows.values())
    assert split.X_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.X_val.shape[1] == split.X_test.shape[1] == len(split.feature_names)


def test_scaler_is_fitted_on_train_rows_only(two_symbols):
    cfg, folder = two_symbols
    parts, split = run_phases(cfg, folder)
    # the split works in float32 (memberships need no more); the stats are taken in float64
    train = np.concatenate(
        [p.X.to_numpy(np.float32)[: split.rows[p.symbol]["train"]] for p in parts]
    ).astype(np.float64)
    everything = np.concatenate([p.X.to_numpy() for p in parts])
    np.testing.assert_allclose(split.scaler.params["mean"], train.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(split.scaler.params["std"], train.std(axis=0), rtol=1e-9)
    assert not np.allclose(split.scaler.params["mean"], everything.mean(axis=0))
    varying = train.std(axis=0) > 0
    np.testing.assert_allclose(split.X_train.mean(axis=0)[varying], 0, atol=1e-4)


def test_labels_follow_their_rows(two_symbols):
    cfg, folder = two_symbols
    parts, split = run_phases(cfg, folder)
    first = parts[0]
    n = split.rows[first.symbol]["train"]
    np.testing.assert_array_equal(split.y_train[:n], first.y.to_numpy()[:n])
    assert not first.X.isna().any().any() and first.X.index.equals(first.y.index)
    assert set(np.unique(split.y_train)) <= {0, 1, 2}


def test_unscaled_features_pass_through(strategy, bars_dir):
    doc = strategy()
    doc["model"]["features"] = {"lookback_periods": 0, "scale_features": False}
    parts, split = run_phases(load_strategy(doc), bars_dir(bars=300))
    assert split.scaler is None
    np.testing.assert_allclose(
        split.X_train, parts[0].X.to_numpy()[: len(split.X_train)], rtol=1e-6
    )


def test_standard_scaler_on_many_rows_matches_numpy():
    X = np.random.default_rng(0).normal([1.0, -3.0, 50.0], [0.1, 2.0, 7.0], (200_001, 3))
    scaler = Scaler("standard").fit(X)  # several blocks of rows
    np.testing.assert_allclose(scaler.params["mean"], X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.params["std"], X.std(axis=0), rtol=1e-10)
    scaled = scaler.transform(X)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.std(axis=0, dtype=np.float64), 1.0, rtol=1e-5)


def test_minmax_scaler_and_its_json_round_trip():
    X = np.array([[0.0, 5.0, 1.0], [10.0, 5.0, 3.0], [5.0, 5.0, 2.0]])
    scaler = Scaler("minmax").fit(X)
    np.testing.assert_allclose(scaler.transform(X), [[0, 0, 0], [1, 0, 1], [0.5, 0, 0.5]])
    again = Scaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))
    standard = Scaler("standard").fit(X)
    assert np.isfinite(standard.transform(X)).all()  # the constant column is not divided by 0


def test_prediction_features_match_training_features(strategy, bars_dir):
    folder = bars_dir(bars=400)
    cfg = load_strategy(strategy())
    _, split = run_phases(cfg, folder)
    X, index = dataset.prediction_features(cfg, folder, "SYN", split.feature_names, split.scaler)
    test_index = split.index["SYN"]["test"]
    assert index[-1] == test_index[-1]
    np.testing.assert_allclose(X[-len(test_index) :], split.X_test, rtol=1e-6)
    raw, raw_index = dataset.prediction_features(
        cfg, folder, "SYN", split.feature_names[::-1], None, last_n=5
    )
    assert raw.shape == (5, len(split.feature_names)) and raw_index.equals(index[-5:])
    np.testing.assert_allclose(split.scaler.transform(raw[:, ::-1]), X[-5:], rtol=1e-5)


def test_prediction_refuses_features_the_strategy_does_not_make(strategy, bars_dir):
    folder = bars_dir(bars=300)
    with pytest.raises(DataError, match="does not produce: volume_spike") as info:
        dataset.prediction_features(
            load_strategy(strategy()), folder, "SYN", ["volume_spike"], None
        )
    assert info.value.kind == "features"


def test_no_usable_rows_names_the_all_nan_features(strategy, bars_dir):
    doc = strategy()
    doc["training_data"]["timeframes"] = {"mode": "multi_timeframe", "list": ["1h", "1d"]}
    doc["training_data"]["history_required"] = 0
    folder = bars_dir(bars=24 * 10)  # 10 daily bars: too few for a 14-day RSI
    with pytest.raises(DataError, match="no usable rows.*1d_rsi_14_low") as info:
        run_phases(load_strategy(doc), folder)
    assert info.value.kind == "unusable"


def test_date_range_limits_the_rows(strategy, bars_dir):
    folder = bars_dir(bars=24 * 30, start="2021-01-01")
    parts, _ = run_phases(load_strategy(strategy()), folder, "2021-01-10", "2021-01-20")
    index = parts[0].X.index
    assert index[0] >= pd.Timestamp("2021-01-10", tz="UTC")
    assert index[-1] == pd.Timestamp("2021-01-20 23:00", tz="UTC")
