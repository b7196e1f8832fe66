"""v3 model types and migration: LSTM/GRU windows read no future bar, a v2 file and its
`ktrdr strategies migrate` form train identical weights, sequence models save and predict."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from libs.pipeline import dataset
from libs.pipeline.config.strategy import load_strategy
from libs.pipeline.data.synth import synth_ohlcv, write_ohlcv_csv
from libs.pipeline.migrate import migrate, training_settings
from libs.pipeline.pipeline import train_strategy
from libs.pipeline.progress import TrainingCancelled
from libs.pipeline.request import TrainingRequest
from libs.pipeline.split import Scaler
from libs.pipeline.storage.load import load_model
from services.cli.app import app
from tests.unit.test_train_strategy import STRATEGY as V2_STRATEGY

LSTM = {
    "name": "lstm_synth",
    "version": "3.0",
    "training_data": {
        "symbols": {"mode": "single", "symbol": "SYN"},
        "timeframes": {"mode": "multi_timeframe", "list": ["1h", "4h"], "base_timeframe": "1h"},
    },
    "indicators": {
        "rsi_14": {"type": "rsi", "period": 14},
        "ema_10": {"type": "ema", "period": 10},
    },
    "fuzzy_sets": {"rsi": {"indicator": "rsi_14", "low": [0, 30, 50], "high": [50, 70, 100]}},
    "nn_inputs": [{"fuzzy_set": "rsi"}, {"raw_indicator": "ema_10", "timeframes": ["1h"]}],
    "model": {"type": "lstm", "architecture": {"sequence_length": 6, "hidden_size": 8}},
    "training": {
        "epochs": 2,
        "batch_size": 64,
        "labels": {"source": "forward_return", "horizon": 6},
        "data_split": {"guards": "warn"},
    },
}


def write_synth(folder: Path, bars: int = 1500, seed: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_ohlcv_csv(synth_ohlcv(bars, "1h", seed=seed), folder / "SYN_1h.csv")
    return folder


def test_lstm_windows_read_no_future_bar(tmp_path):
    """Every window built from the bars is the same when the bars after its row are changed:
    the window of a row holds that row and the rows before it, never a later one."""
    cfg = load_strategy(LSTM)
    clean = write_synth(tmp_path / "clean")
    X, times = dataset.prediction_features(cfg, clean, "SYN", _names(cfg, clean), None)
    assert X.ndim == 3 and X.shape[1] == 6
    frame = synth_ohlcv(1500, "1h", seed=3)
    cut = frame.index[1000]
    changed = frame.copy()
    after = changed.index > cut
    changed.loc[after, ["open", "high", "low", "close"]] *= 1.5  # a different future
    (tmp_path / "changed").mkdir()
    write_ohlcv_csv(changed, tmp_path / "changed" / "SYN_1h.csv")
    Y, times_y = dataset.prediction_features(
        cfg, tmp_path / "changed", "SYN", _names(cfg, clean), None
    )
    # A 1h row at time t is decided at its close (t + 1h): rows up to the cut bar see the
    # same past; the 4h block reaches a row only after its 4h bar closed.
    same = times <= cut
    assert same.sum() > 500 and (times == times_y).all()
    np.testing.assert_array_equal(X[same], Y[same])
    assert not np.array_equal(X[~same], Y[~same])  # the change is visible after the cut


def _names(cfg, data_dir):
    frames = dataset.load_frames(cfg, data_dir, None, None)
    fuzzy = dataset.compute_fuzzy(cfg, frames, dataset.compute_indicators(cfg, frames))
    return list(dataset.build_features(cfg, fuzzy)["SYN"].columns)


def test_lstm_and_gru_train_save_and_predict_the_same_windows(tmp_path):
    data = write_synth(tmp_path / "data")
    for kind in ("lstm", "gru"):
        doc = copy.deepcopy(LSTM)
        doc["model"]["type"] = kind
        result = train_strategy(
            TrainingRequest(strategy=doc, data_dir=data, models_dir=tmp_path / "models", seed=5)
        )
        loaded = load_model(result.model.path)
        assert loaded.metadata["architecture"]["type"] == kind
        cfg = load_strategy(doc)
        scaler_dict = loaded.features["scaler"]
        X, _ = dataset.prediction_features(
            cfg, data, "SYN", loaded.feature_names, Scaler.from_dict(scaler_dict), last_n=5
        )
        prediction = loaded.predict(X)
        assert prediction.probabilities.shape == (5, 3)
        np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_the_same_seed_gives_the_same_lstm_weights(tmp_path):
    data = write_synth(tmp_path / "data")
    weights = []
    for run in range(2):
        result = train_strategy(
            TrainingRequest(strategy=LSTM, data_dir=data, models_dir=tmp_path / f"m{run}", seed=9)
        )
        weights.append(torch.load(result.model.path / "model.pt", weights_only=True))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_v2_and_its_migrated_v3_form_train_identical_weights(tmp_path):
    data = write_synth(tmp_path / "data")
    migrated = migrate(load_strategy(V2_STRATEGY))
    assert migrated["version"] == "3.0" and "nn_inputs" in migrated
    assert "epochs" in migrated["training"] and "training" not in migrated["model"]
    states = []
    for name, doc in (("v2", V2_STRATEGY), ("v3", migrated)):
        result = train_strategy(
            TrainingRequest(strategy=doc, data_dir=data, models_dir=tmp_path / name, seed=11)
        )
        states.append(torch.load(result.model.path / "model.pt", weights_only=True))
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_ktrdr_strategies_migrate_writes_a_v3_file_that_trains_alike(tmp_path):
    source = tmp_path / "old.yaml"
    source.write_text(yaml.safe_dump(V2_STRATEGY))
    target = tmp_path / "new.yaml"
    runner = CliRunner()
    result = runner.invoke(app, ["strategies", "migrate", str(source), "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert "version: '3.0'" in text and "nn_inputs:" in text
    assert training_settings(load_strategy(target)) == training_settings(load_strategy(source))
    again = runner.invoke(app, ["strategies", "migrate", str(target)])
    assert again.exit_code == 2 and "already format v3" in again.output
    missing = runner.invoke(app, ["strategies", "migrate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "cannot read strategy file" in missing.output


def _sequences(X: np.ndarray, length: int = 4) -> np.ndarray:
    return np.ascontiguousarray(dataset.sequence_windows(np.asarray(X, np.float32), length))


SEQUENCE_SETUPS = {
    "lstm-2-layers-dropout-focal": ({"type": "lstm", "num_layers": 2, "dropout": 0.3}, "focal"),
    "gru-regression-huber": ({"type": "gru", "num_layers": 1, "dropout": 0.1}, "huber"),
}


@pytest.mark.parametrize("setup", list(SEQUENCE_SETUPS))
@pytest.mark.parametrize("kill", [True, False])
def test_sequence_models_resume_bit_identical(problem, setup, kill):
    """LSTM/GRU go through the loop's checkpoints like the MLP: stopped mid-epoch (SIGTERM)
    or killed, a resumed run ends with the uninterrupted run's weights, bit for bit."""
    from libs.pipeline.model import build_network
    from libs.pipeline.training.loop import train_model
    from libs.pipeline.training.setup import TrainParams
    from tests.support.checkpoints import MemoryCheckpoints
    from tests.unit.pipeline_model.test_checkpoints import BATCHES, Killed, StopAt, digest

    arch, loss = SEQUENCE_SETUPS[setup]
    X, y, Xv, yv = problem
    regression = loss == "huber"
    if regression:  # classes 0, 1, 2 read as returns +1 %, 0, -1 %
        y = (1.0 - np.asarray(y, np.float32)) * 0.01
        yv = (1.0 - np.asarray(yv, np.float32)) * 0.01
    data = (_sequences(X), y[3:], _sequences(Xv), yv[3:])
    weights = np.linspace(0.5, 1.5, len(data[1])).astype(np.float32)
    p = TrainParams(
        epochs=2,
        batch_size=32,
        learning_rate=0.01,
        seed=3,
        loss=loss,
        num_classes=1 if regression else 3,
        huber_delta=0.01,
    )

    def make():
        record = {**arch, "hidden_size": 8, "num_classes": p.num_classes}
        return build_network(record, 6, generator=torch.Generator().manual_seed(1))

    expected = make()
    train_model(expected, *data, p, w_train=weights)
    sink = MemoryCheckpoints()
    stopper = StopAt(BATCHES + 5, kill=kill)
    with pytest.raises(Killed if kill else TrainingCancelled):
        train_model(
            make(), *data, p, reporter=stopper, token=stopper, checkpoints=sink, w_train=weights
        )
    torch.manual_seed(999)
    resumed = make()
    train_model(resumed, *data, p, checkpoints=sink, w_train=weights)
    assert digest(resumed) == digest(expected)
