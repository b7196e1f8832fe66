"""Time split per symbol, scaler fitted on train rows only, and the end-to-end data phases."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from libs.pipeline import dataset
from libs.pipeline.config.strategy import load_strategy
from libs.pipeline.data.ohlcv import DataError
from libs.pipeline.labels import UNKNOWN, zigzag_labels
from libs.pipeline.split import Scaler, split_sizes, timeline, walk_forward_windows


def run_phases(cfg, folder, start=None, end=None):
    frames = dataset.load_frames(cfg, folder, start, end)
    fuzzy = dataset.compute_fuzzy(cfg, frames, dataset.compute_indicators(cfg, frames))
    parts = dataset.combine(dataset.build_features(cfg, fuzzy), dataset.build_labels(cfg, frames))
    return parts, dataset.split_and_scale(cfg, parts)


@pytest.fixture
def two_symbols(strategy, bars_dir):
    """AAA from 2021-01-01; BBB starts nine days later and is listed first."""
    bars_dir(symbol="AAA", bars=900, seed=1, start="2021-01-01")
    folder = bars_dir(symbol="BBB", bars=700, seed=2, start="2021-01-10")
    doc = strategy()
    doc["training_data"]["symbols"] = {"mode": "multi_symbol", "list": ["BBB", "AAA"]}
    return load_strategy(doc), folder


def test_split_sizes():
    assert split_sizes(100, 0.7, 0.15) == (70, 15, 15)
    assert split_sizes(7, 0.6, 0.2) == (4, 1, 2)


def cuts(split):
    windows = split.report["windows"]
    return pd.Timestamp(windows["validation"]["start"]), pd.Timestamp(windows["test"]["start"])


def test_every_symbol_is_cut_at_the_same_dates(two_symbols):
    cfg, folder = two_symbols
    parts, split = run_phases(cfg, folder)
    validation_start, test_start = cuts(split)
    # the cuts are fractions of the common timeline (distinct times of both symbols)
    times = timeline([p.X.index for p in parts])
    n_train, n_val, _ = split_sizes(len(times), 0.6, 0.2)
    assert (validation_start, test_start) == (times[n_train], times[n_train + n_val])
    for part in parts:
        index = split.index[part.symbol]
        assert index["train"].max() < validation_start <= index["validation"].min()
        assert index["validation"].max() < test_start <= index["test"].min()
    # the order of the symbols changes no cut
    doc = cfg.snapshot()
    doc["training_data"]["symbols"]["list"] = ["AAA", "BBB"]
    _, again = run_phases(load_strategy(doc), folder)
    assert cuts(again) == (validation_start, test_start)
    assert len(split.X_train) == sum(r["train"] for r in split.rows.values())
    assert split.X_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.X_val.shape[1] == split.X_test.shape[1] == len(split.feature_names)


def test_explicit_cut_dates(two_symbols):
    cfg, folder = two_symbols
    doc = cfg.snapshot()
    doc["training"]["data_split"] = {
        "validation_start": "2021-01-25",
        "test_start": "2021-02-01T12:00",
        "purge_bars": 0,
    }
    parts, split = run_phases(load_strategy(doc), folder)
    validation_start, test_start = cuts(split)
    assert validation_start == pd.Timestamp("2021-01-25", tz="UTC")
    assert test_start == pd.Timestamp("2021-02-01 12:00", tz="UTC")
    for part in parts:
        assert split.index[part.symbol]["test"].min() == test_start
    assert split.report["method"] == "dates"


def test_no_purge_with_a_symbol_that_ends_before_the_cuts(strategy, bars_dir):
    """BBB's last bar comes before the validation start: with purge_bars 0 there is no bar
    at the cut to count back from, and BBB keeps every labelled row for training."""
    bars_dir(symbol="AAA", bars=900, seed=1, start="2021-01-01")
    folder = bars_dir(symbol="BBB", bars=300, seed=2, start="2021-01-01")
    doc = strategy()
    doc["training_data"]["symbols"] = {"mode": "multi_symbol", "list": ["AAA", "BBB"]}
    doc["training"]["data_split"] = {
        "validation_start": "2021-01-20",
        "test_start": "2021-02-01",
        "purge_bars": 0,
    }
    parts, split = run_phases(load_strategy(doc), folder)
    bbb = next(p for p in parts if p.symbol == "BBB")
    assert bbb.close.index.max() < pd.Timestamp("2021-01-20", tz="UTC")
    assert split.rows["BBB"]["train"] == int((bbb.y != UNKNOWN).sum()) > 0
    assert split.rows["BBB"]["validation"] == split.rows["BBB"]["test"] == 0
    assert split.index["AAA"]["test"].min() == pd.Timestamp("2021-02-01", tz="UTC")


def test_the_purge_gap_holds_and_no_train_label_reads_a_later_split(two_symbols):
    cfg, folder = two_symbols
    parts, split = run_phases(cfg, folder)
    gap = dataset.purge_bars(cfg)
    assert gap == 20  # label_lookahead by default
    for part in parts:
        bars = part.close.index
        index = split.index[part.symbol]
        for before, after in (("train", "validation"), ("validation", "test")):
            last, first = bars.get_loc(index[before].max()), bars.get_loc(index[after].min())
            assert first - last > gap
            # every kept label is the one the bars before the cut alone give
            cut = pd.Timestamp(split.report["windows"][after]["start"])
            close = part.close[bars < cut]
            alone = pd.Series(zigzag_labels(close.to_numpy(), 0.01, 20), index=close.index)
            kept = index[before]
            np.testing.assert_array_equal(alone[kept].to_numpy(), part.y[kept].to_numpy())
        excluded = split.report["excluded"]
        assert excluded["train"]["purged"] >= gap and excluded["validation"]["purged"] >= gap


def test_unknown_labels_are_excluded_and_counted(two_symbols):
    cfg, folder = two_symbols
    parts, split = run_phases(cfg, folder)
    unknown = sum(int((p.y == UNKNOWN).sum()) for p in parts)
    assert unknown > 0  # the open leg at the end of each file
    excluded = split.report["excluded"]
    assert sum(e["unknown_label"] for e in excluded.values()) == unknown
    for y in (split.y_train, split.y_val, split.y_test):
        assert set(np.unique(y).tolist()) <= {0, 1, 2}
    total = sum(len(p.y) for p in parts)
    purged = sum(e["purged"] for e in excluded.values())
    assert len(split.y_train) + len(split.y_val) + len(split.y_test) + unknown + purged == total


def test_walk_forward_folds_never_overlap_and_train_on_the_past(two_symbols):
    cfg, folder = two_symbols
    parts = run_phases(cfg, folder)[0]
    indexes = [p.X.index for p in parts]
    for window in ("expanding", "rolling"):
        doc = cfg.snapshot()
        doc["training"]["data_split"]["walk_forward"] = {"folds": 4, "window": window}
        spec = load_strategy(doc).training.data_split
        folds = walk_forward_windows(spec, indexes)
        assert len(folds) == 4
        tests = []
        for train, validation, test in folds:
            fold = dataset.split_and_scale(cfg, parts, [train, validation, test])
            for index in fold.index.values():
                if not (len(index["train"]) and len(index["validation"])):
                    continue  # BBB starts after the first fold's window
                assert index["train"].max() < index["validation"].min()
                assert index["validation"].max() < index["test"].min()
            tests.append(np.concatenate([i["test"].asi8 for i in fold.index.values()]))
            assert train.start is None or window == "rolling"
        for earlier, later in zip(tests, tests[1:], strict=False):
            assert earlier.max() < later.min()  # consecutive, never overlapping
        if window == "rolling":
            lengths = [f[1].start - (f[0].start or timeline(indexes)[0]) for f in folds]
            assert max(lengths) - min(lengths) < pd.Timedelta(days=2)


def test_guards_refuse_a_split_too_weak_to_judge(strategy, bars_dir):
    from libs.pipeline.pipeline import _splits

    doc = strategy()
    doc["training"]["data_split"]["min_test_days"] = 30
    cfg = load_strategy(doc)
    parts, _ = run_phases(cfg, bars_dir(bars=600))  # 25 days: a 5-day test window
    with pytest.raises(DataError, match="test window spans .* less than min_test_days 30") as e:
        _splits(cfg, parts, [])
    assert e.value.kind == "weak_split"
    doc["training"]["data_split"]["guards"] = "warn"
    warnings: list[str] = []
    _splits(load_strategy(doc), parts, warnings)
    assert any("min_test_days" in w for w in warnings)


def test_guards_refuse_too_few_rows_and_a_missing_class(strategy, bars_dir):
    doc = strategy()
    doc["training"]["data_split"]["min_rows"] = 200
    cfg = load_strategy(doc)
    parts, split = run_phases(cfg, bars_dir(bars=600))
    assert dataset.weak_split_problems(cfg, split)[0].startswith("the validation split has")
    one_sided = dataclasses.replace(split, y_train=np.where(split.y_train == 2, 1, split.y_train))
    one_sided.y_train[one_sided.y_train == 0] = 1
    problems = dataset.weak_split_problems(cfg, one_sided)
    assert any("the test split has" in p and "min_rows 200" in p for p in problems)
    assert any("no BUY, SELL row in the train split" in p for p in problems)


def test_scaler_is_fitted_on_train_rows_only(two_symbols):
    cfg, folder = two_symbols
    parts, split = run_phases(cfg, folder)
    # the split works in float32 (memberships need no more); the stats are taken in float64
    train = np.concatenate(
        [p.X.loc[split.index[p.symbol]["train"]].to_numpy(np.float32) for p in parts]
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
    np.testing.assert_array_equal(split.y_train[:n], first.y[split.index[first.symbol]["train"]])
    assert not first.X.isna().any().any() and first.X.index.equals(first.y.index)
    assert set(np.unique(split.y_train)) <= {0, 1, 2}


def test_unscaled_features_pass_through(strategy, bars_dir):
    doc = strategy()
    doc["model"]["features"] = {"lookback_periods": 0, "scale_features": False}
    parts, split = run_phases(load_strategy(doc), bars_dir(bars=300))
    assert split.scaler is None
    np.testing.assert_allclose(
        split.X_train, parts[0].X.loc[split.index["SYN"]["train"]].to_numpy(), rtol=1e-6
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
    assert index[-1] > test_index[-1]  # the last rows' labels are not known yet
    np.testing.assert_allclose(X[index.get_indexer(test_index)], split.X_test, rtol=1e-6)
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
