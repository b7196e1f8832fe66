"""train_strategy(): the one phase sequence, on small synthetic data in a tmp folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from libs.pipeline import dataset
from libs.pipeline.config.strategy import StrategyConfigError, load_strategy
from libs.pipeline.data.ohlcv import DataError
from libs.pipeline.data.synth import synth_ohlcv, write_ohlcv_csv
from libs.pipeline.device import DeviceError
from libs.pipeline.pipeline import train_strategy
from libs.pipeline.progress import PHASES, TrainingCancelled
from libs.pipeline.request import TrainingRequest
from libs.pipeline.split import Scaler
from libs.pipeline.storage.catalog import list_models
from libs.pipeline.storage.load import load_model
from libs.pipeline.storage.save import MODEL_FILES
from tests.support.reporters import RecordingReporter

STRATEGY = {
    "name": "tiny_synth",
    "version": "2.0",
    "training_data": {
        "symbols": {"mode": "single_symbol", "list": ["SYN"]},
        "timeframes": {"mode": "single_timeframe", "list": ["1h"]},
        "history_required": 30,
    },
    "indicators": [
        {"name": "rsi", "feature_id": "rsi_14", "period": 14},
        {"name": "sma", "feature_id": "sma_20", "period": 20},
    ],
    "fuzzy_sets": {
        "rsi_14": {"low": [0, 20, 45], "mid": [30, 50, 70], "high": [55, 80, 100]},
        "sma_20": {
            "input_transform": {"type": "price_ratio", "reference": "close"},
            "below": [0.98, 0.995, 1.0],
            "above": [1.0, 1.005, 1.02],
        },
    },
    "model": {
        "architecture": {"hidden_layers": [8], "activation": "relu", "dropout": 0.1},
        "features": {"lookback_periods": 2},
        "training": {"epochs": 2, "batch_size": 32, "learning_rate": 0.01},
    },
    "training": {
        "labels": {"zigzag_threshold": 0.01, "label_lookahead": 60},
        "data_split": {"train": 0.7, "validation": 0.15, "test": 0.15},
    },
    "decisions": {"confidence_threshold": 0.6},
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_ohlcv_csv(synth_ohlcv(1500, "1h", seed=3), folder / "SYN_1h.csv")
    return folder


def request_for(data_dir, models_dir, **kw) -> TrainingRequest:
    return TrainingRequest(strategy=STRATEGY, data_dir=data_dir, models_dir=models_dir, **kw)


def phases_of(reporter: RecordingReporter) -> list[str]:
    return [name for kind, name in reporter.calls if kind == "phase"]


class CancelAt(RecordingReporter):
    """Reporter + token: cancelled after `batches` batches, or once `phase` has started."""

    def __init__(self, batches: int | None = None, phase: str | None = None):
        super().__init__()
        self.batches, self.phase = batches, phase

    def is_cancelled(self) -> bool:
        seen = [kind for kind, _ in self.calls]
        if self.batches is not None and seen.count("batch") >= self.batches:
            return True
        return self.phase is not None and self.phase in phases_of(self)


def test_phases_in_order_and_the_model_saved(data_dir, tmp_path):
    reporter = RecordingReporter()
    result = train_strategy(request_for(data_dir, tmp_path, training_id="t-1"), reporter)
    assert phases_of(reporter) == list(PHASES)
    kinds = [kind for kind, _ in reporter.calls]
    training_at = kinds.index("phase", kinds.index("phase") + PHASES.index("training"))
    first_batch, last_epoch = kinds.index("batch"), len(kinds) - 1 - kinds[::-1].index("epoch")
    assert training_at < first_batch and last_epoch < len(kinds) - 2  # evaluation, saving after
    assert kinds.count("epoch") == 2

    saved = result.model
    assert (saved.strategy, saved.timeframe, saved.version) == ("tiny_synth", "1h", 1)
    assert sorted(p.name for p in saved.path.iterdir()) == sorted(MODEL_FILES)
    meta = json.loads((saved.path / "metadata.json").read_text())
    assert meta["training_id"] == "t-1" and meta["symbols"] == ["SYN"]
    assert meta["input_size"] == len(
        json.loads((saved.path / "features.json").read_text())["feature_names"]
    )
    config = json.loads((saved.path / "config.json").read_text())
    assert load_strategy(config).name == "tiny_synth"
    assert config["decisions"] == {"confidence_threshold": 0.6}  # kept, not dropped
    assert result.test_metrics["samples"] == sum(
        r["test"] for r in result.training_metrics["rows"].values()
    )
    assert len(result.training_metrics["history"]) == 2


def test_unused_sections_give_one_warning(data_dir, tmp_path):
    result = train_strategy(request_for(data_dir, tmp_path))
    assert len(result.warnings) == 1 and "decisions" in result.warnings[0]


def test_same_request_same_weights_and_metrics(data_dir, tmp_path):
    first = train_strategy(request_for(data_dir, tmp_path / "a", seed=11))
    second = train_strategy(request_for(data_dir, tmp_path / "b", seed=11))
    other = train_strategy(request_for(data_dir, tmp_path / "c", seed=12))
    assert first.model.sha256 == second.model.sha256
    assert first.test_metrics == second.test_metrics
    assert first.training_metrics["history"][-1]["val_loss"] == pytest.approx(
        second.training_metrics["history"][-1]["val_loss"], abs=0
    )
    assert other.model.sha256 != first.model.sha256


def test_cancel_after_n_batches_stops_there_and_saves_nothing(data_dir, tmp_path):
    spy = CancelAt(batches=3)
    with pytest.raises(TrainingCancelled) as raised:
        train_strategy(request_for(data_dir, tmp_path), spy, spy)
    assert [kind for kind, _ in spy.calls].count("batch") == 3
    assert (raised.value.phase, raised.value.epoch) == ("training", 1)
    assert "evaluation" not in phases_of(spy)
    assert list_models(tmp_path) == []
    assert not (tmp_path / "tiny_synth").exists() or not any((tmp_path / "tiny_synth").iterdir())


def test_cancel_between_phases_stops_before_the_next(data_dir, tmp_path):
    spy = CancelAt(phase="features")
    with pytest.raises(TrainingCancelled) as raised:
        train_strategy(request_for(data_dir, tmp_path), spy, spy)
    assert raised.value.phase == "labels"
    assert phases_of(spy) == list(PHASES[: PHASES.index("features") + 1])
    assert not tmp_path.joinpath("tiny_synth").exists()


def test_overrides_are_applied_and_saved(data_dir, tmp_path):
    result = train_strategy(
        request_for(data_dir, tmp_path, overrides={"epochs": 1, "hidden_layers": [5, 4]})
    )
    assert result.training_metrics["epochs_run"] == 1
    config = json.loads((result.model.path / "config.json").read_text())
    assert config["model"]["training"]["epochs"] == 1
    assert load_model(result.model.path).model[0].out_features == 5


def test_saved_model_predicts_on_the_same_features(data_dir, tmp_path):
    result = train_strategy(request_for(data_dir, tmp_path))
    loaded = load_model(result.model.path)
    scaler = loaded.features["scaler"]
    X, index = dataset.prediction_features(
        load_strategy(loaded.config),
        data_dir,
        "SYN",
        loaded.feature_names,
        Scaler.from_dict(scaler) if scaler else None,
        last_n=5,
    )
    prediction = loaded.predict(X)
    assert len(index) == 5 and prediction.probabilities.shape == (5, 3)
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_bad_requests_fail_before_any_phase(data_dir, tmp_path):
    reporter = RecordingReporter()
    with pytest.raises(DeviceError, match="not available|unknown"):
        train_strategy(request_for(data_dir, tmp_path, device="tpu"), reporter)
    with pytest.raises(StrategyConfigError, match="overrides.epoch"):
        train_strategy(request_for(data_dir, tmp_path, overrides={"epoch": 3}), reporter)
    assert reporter.calls == []


def test_the_result_carries_the_honest_evaluation(data_dir, tmp_path):
    result = train_strategy(request_for(data_dir, tmp_path))
    test = result.test_metrics
    assert test["verdict"].startswith("evidence of skill at 95 %: ")
    assert set(test["baselines"]) == {"majority_class", "buy_and_hold", "momentum"}
    assert {"sharpe", "max_drawdown", "turnover", "exposure"} <= set(test["trading"])
    split = result.training_metrics["split"]
    assert split == test["split"] and split["purge_bars"] == 60  # the label_lookahead
    assert split["rows"]["test"] == test["samples"]
    saved = json.loads((result.model.path / "metrics.json").read_text())
    assert saved["test"]["verdict"] == test["verdict"]
    assert saved["test"]["bootstrap"] == test["bootstrap"]


def test_walk_forward_folds_are_judged_each_and_pooled(data_dir, tmp_path):
    doc = json.loads(json.dumps(STRATEGY))
    doc["training"]["data_split"] = {
        "train": 0.5,  # a larger validation share: each rolling fit keeps a purged one
        "validation": 0.35,
        "test": 0.15,
        "min_test_days": 2,
        "walk_forward": {"folds": 3, "window": "rolling"},
    }
    request = TrainingRequest(strategy=doc, data_dir=data_dir, models_dir=tmp_path)
    walk = train_strategy(request).test_metrics["walk_forward"]
    assert walk["folds"] == 3 and walk["window"] == "rolling"
    folds = walk["per_fold"]
    starts = [f["windows"]["test"]["start"] for f in folds]
    assert starts == sorted(starts) and len(set(starts)) == 3
    for fold in folds:
        assert fold["windows"]["validation"]["end"] == fold["windows"]["test"]["start"]
        # each fold's own verdict line, agreeing with its skill flag and its intervals
        answer = "yes" if fold["skill"] else "no"
        assert fold["verdict"].startswith(f"evidence of skill at 95 %: {answer} (accuracy ")
        low, high = fold["bootstrap"]["sharpe_minus_best_baseline"]
        assert f"[{low:+.2f}, {high:+.2f}]" in fold["verdict"]
    assert walk["pooled"]["samples"] == sum(f["rows"]["test"] for f in folds)
    assert walk["mean"]["accuracy"]["mean"] == pytest.approx(
        np.mean([f["accuracy"] for f in folds])
    )


def test_a_one_day_range_is_refused_before_training_and_saves_nothing(data_dir, tmp_path):
    reporter = RecordingReporter()
    request = request_for(data_dir, tmp_path, start_date="2020-02-20", end_date="2020-02-20")
    with pytest.raises(DataError, match="split is empty|cannot support an honest") as info:
        train_strategy(request, reporter)
    assert info.value.kind == "weak_split"
    assert "training" not in phases_of(reporter) and list_models(tmp_path) == []
    doc = json.loads(json.dumps(STRATEGY))
    doc["training"]["data_split"] |= {"guards": "warn", "min_rows": 100}
    request = TrainingRequest(
        strategy=doc,
        data_dir=data_dir,
        models_dir=tmp_path,
        start_date="2020-02-05",
        end_date="2020-02-21",
    )
    result = train_strategy(request)  # trained and saved, with the problems said
    assert any("fewer than min_rows 100" in w for w in result.warnings)
    assert list_models(tmp_path)
