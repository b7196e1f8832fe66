"""The v3 corpus (tests/strategies_v3): every file trains through train_strategy() on the
shipped data or on synthetic data written here, and every file under errors/ fails with the
problem its `# expect:` line names (first)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from libs.pipeline.config.strategy import StrategyConfigError, load_strategy
from libs.pipeline.data.synth import synth_ohlcv, write_ohlcv_csv
from libs.pipeline.pipeline import train_strategy
from libs.pipeline.request import TrainingRequest
from libs.pipeline.storage.load import load_model

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO / "tests" / "strategies_v3"
TRAINABLE = sorted(CORPUS.glob("*.yaml"))
ERRORS = sorted((CORPUS / "errors").glob("*.yaml"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for csv in (REPO / "data").glob("*.csv"):
        shutil.copy(csv, folder / csv.name)
    write_ohlcv_csv(synth_ohlcv(12000, "5m", seed=5, volatility=0.001), folder / "SYN5_5m.csv")
    write_context(folder)
    return folder


def write_context(folder: Path, seed: int = 8) -> None:
    """SYN and GBPSYN hourly bars, FRED daily yields (two series), weekly CFTC net positions:
    the files docs/strategy-format.md#context_data names."""
    write_ohlcv_csv(synth_ohlcv(2000, "1h", seed=seed), folder / "SYN_1h.csv")
    write_ohlcv_csv(synth_ohlcv(2000, "1h", seed=seed + 1), folder / "GBPSYN_1h.csv")
    rng = np.random.default_rng(seed)
    context = folder / "context"
    context.mkdir(exist_ok=True)
    days = pd.date_range("2019-12-01", periods=140, freq="D")
    for series, level in (("DGS2", 1.5), ("IRLTLT01DEM156N", -0.3)):
        values = level + np.cumsum(rng.normal(0, 0.03, len(days)))
        pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "value": values}).to_csv(
            context / f"fred_{series}.csv", index=False
        )
    weeks = pd.date_range("2017-01-03", "2020-04-30", freq="W-TUE")
    net = np.cumsum(rng.normal(0, 5000, len(weeks)))
    pd.DataFrame({"date": weeks.strftime("%Y-%m-%d"), "net": net}).to_csv(
        context / "cot_EUR.csv", index=False
    )


def test_the_corpus_is_there():
    assert len(TRAINABLE) >= 7 and len(ERRORS) >= 10


@pytest.mark.parametrize("path", TRAINABLE, ids=lambda p: p.stem)
def test_each_v3_file_trains_and_its_model_predicts(path, data_dir, tmp_path):
    cfg = load_strategy(path)
    assert cfg.version == "3.0"
    result = train_strategy(
        TrainingRequest(
            strategy=yaml.safe_load(path.read_text()), data_dir=data_dir, models_dir=tmp_path
        )
    )
    metrics = result.test_metrics
    assert metrics["samples"] > 0 and "verdict" in metrics
    assert result.training_metrics["epochs_run"] >= 1
    loaded = load_model(result.model.path)
    assert loaded.metadata["architecture"]["type"] == cfg.model.type
    assert loaded.features["sequence_length"] == cfg.sequence_length
    from libs.pipeline import dataset
    from libs.pipeline.split import Scaler

    scaler = loaded.features["scaler"]
    X, _ = dataset.prediction_features(
        cfg,
        data_dir,
        cfg.symbols[0],
        loaded.feature_names,
        Scaler.from_dict(scaler) if scaler else None,
        last_n=3,
    )
    prediction = loaded.predict(X)
    assert len(prediction.labels) == 3
    if cfg.output_format == "regression":
        assert prediction.values is not None and np.isfinite(prediction.values).all()
        assert set(prediction.labels) <= {"BUY", "HOLD", "SELL"}
    else:
        assert prediction.probabilities.shape == (3, len(cfg.class_names))
        assert set(prediction.labels) <= set(cfg.class_names)
    if cfg.output_format == "regression":
        assert set(metrics["regression"]) >= {
            "mse",
            "information_coefficient",
            "directional_accuracy",
        }
    else:
        assert [row["majority_class"] for row in [metrics["baseline"]]][0] in cfg.class_names
        assert len(metrics["confusion_matrix"]) == len(cfg.class_names)


@pytest.mark.parametrize("path", ERRORS, ids=lambda p: p.stem)
def test_each_error_file_fails_with_its_documented_problem(path):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(StrategyConfigError) as caught:
        load_strategy(path)
    problems = caught.value.problems
    assert expected in problems[0], problems


def test_the_issue_example_loads_where_ktrdr_found_twelve_problems():
    cfg = load_strategy(CORPUS / "minimal_rsi.yaml")
    assert (cfg.symbols, cfg.timeframes) == (["EURUSD"], ["1h"])
    assert cfg.model.architecture.hidden_layers == [16, 8]
    assert (cfg.model.training.epochs, cfg.model.training.batch_size) == (2, 64)
    assert [i.fuzzy_set for i in cfg.nn_inputs or []] == ["rsi_momentum"]
    assert cfg.start_date == "2017-01-01" and cfg.end_date == "2017-06-30"


def test_every_v3_field_is_covered_by_the_corpus():
    """The fields docs/strategy-format.md lists for v3, each written in some corpus file."""
    text = "\n".join(p.read_text() for p in [*TRAINABLE, *ERRORS])
    fields = [
        "scope",
        "deployment",
        "decisions",
        "output_format",
        "num_classes",
        "confidence_threshold",
        "position_awareness",
        "filters",
        "cost_model",
        "round_trip_cost",
        "min_edge_multiplier",
        "mode:",
        "single",
        "symbol:",
        "multi_symbol",
        "symbols:",
        "timeframe:",
        "multi_timeframe",
        "base_timeframe",
        "history_required",
        "date_range",
        "start_date",
        "end_date",
        "type:",
        "RSI",
        "adx",
        "atr",
        "bollingerbandwidth",
        "ema",
        "macd",
        "roc",
        "squeezeintensity",
        "stochastic",
        "williamsr",
        "period",
        "source",
        "fast_period",
        "slow_period",
        "signal_period",
        "k_period",
        "d_period",
        "smooth_k",
        "fast:",
        "slow:",
        "signal:",
        "bb_period",
        "bb_multiplier",
        "kc_period",
        "kc_multiplier",
        "indicator:",
        ".line",
        ".signal",
        ".histogram",
        ".adx",
        ".plus_di",
        ".minus_di",
        ".upper",
        ".middle",
        ".k",
        ".d",
        "triangular",
        "trapezoidal",
        "gaussian",
        "nn_inputs",
        "fuzzy_set",
        "raw_indicator",
        "timeframes:",
        "all",
        "normalization",
        "minmax",
        "zscore",
        "none",
        "lstm",
        "gru",
        "mlp",
        "hidden_layers",
        "activation",
        "dropout",
        "sequence_length",
        "hidden_size",
        "num_layers",
        "epochs",
        "learning_rate",
        "batch_size",
        "optimizer",
        "loss",
        "cross_entropy",
        "focal",
        "huber",
        "focal_gamma",
        "huber_delta",
        "gradient_clip",
        "lr_scheduler",
        "reduce_on_plateau",
        "step",
        "early_stopping",
        "patience",
        "min_delta",
        "enabled",
        "data_split",
        "train",
        "validation",
        "test",
        "zigzag",
        "zigzag_threshold",
        "label_lookahead",
        "forward_return",
        "horizon",
        "bullish_threshold",
        "bearish_threshold",
        "context",
        "triple_barrier",
        "pt_multiplier",
        "sl_multiplier",
        "vol_span",
        "vol_method",
        "max_holding_period",
        "cusum_multiplier",
        "compute_weights",
        "regime",
        "macro_atr_mult",
        "micro_atr_mult",
        "atr_period",
        "vol_crisis_threshold",
        "vol_lookback",
        "progression_tolerance",
        "profit_target_atr",
        "stop_loss_atr",
        "max_holding_bars",
        "output_activation",
    ]
    missing = [f for f in fields if f not in text]
    assert missing == []


def test_normalization_is_fitted_on_train_rows_only_and_saved_with_the_model(data_dir, tmp_path):
    """The saved scaler holds the train split's statistics (recomputed here from the train
    rows alone) and inference reproduces the training inputs exactly."""
    from libs.pipeline import dataset
    from libs.pipeline.split import Scaler

    path = CORPUS / "multi_output_mlp.yaml"
    cfg = load_strategy(path)
    result = train_strategy(
        TrainingRequest(
            strategy=yaml.safe_load(path.read_text()), data_dir=data_dir, models_dir=tmp_path
        )
    )
    saved = load_model(result.model.path).features
    scaler = Scaler.from_dict(saved["scaler"])
    methods = dataset.feature_normalization(cfg)
    assert scaler.columns == methods and {"zscore", "minmax", "none"} <= set(methods)

    frames = dataset.load_frames(cfg, data_dir, None, None)
    fuzzy = dataset.compute_fuzzy(cfg, frames, dataset.compute_indicators(cfg, frames))
    parts = dataset.combine(dataset.build_features(cfg, fuzzy), dataset.build_labels(cfg, frames))
    split = dataset.split_and_scale(cfg, parts)
    train_times = split.index["EURUSD"]["train"]
    raw_train = parts[0].X.loc[train_times].to_numpy(np.float64)
    offset, scale = (
        np.array(saved["scaler"]["params"]["offset"]),
        np.array(saved["scaler"]["params"]["scale"]),
    )
    for j, method in enumerate(methods):
        column = raw_train[:, j]
        if method == "zscore":
            assert offset[j] == pytest.approx(column.mean(), rel=1e-6, abs=1e-9)
            assert scale[j] == pytest.approx(column.std(), rel=1e-5, abs=1e-9) or column.std() == 0
        elif method == "minmax":
            assert (offset[j], offset[j] + scale[j]) == pytest.approx(
                (column.min(), column.max()), abs=1e-6
            ) or column.max() == column.min()
        else:
            assert (offset[j], scale[j]) == (0.0, 1.0)
    # Test rows scaled with train statistics are not standardised themselves.
    zscore = [j for j, m in enumerate(methods) if m == "zscore"]
    assert not np.allclose(split.X_test[:, zscore].mean(axis=0), 0.0, atol=1e-3)

    # Inference: the latest rows, built and scaled from the saved payload, equal the test rows.
    X, times = dataset.prediction_features(cfg, data_dir, "EURUSD", saved["feature_names"], scaler)
    test_times = split.index["EURUSD"]["test"]
    positions = times.get_indexer(test_times)
    assert (positions >= 0).all()
    np.testing.assert_array_equal(X[positions], split.X_test)


def test_a_missing_context_file_is_one_line_naming_the_file(data_dir, tmp_path):
    from libs.pipeline.data.ohlcv import DataError

    folder = tmp_path / "data"
    shutil.copytree(data_dir, folder)
    (folder / "context" / "cot_EUR.csv").unlink()
    doc = yaml.safe_load((CORPUS / "data_source_context.yaml").read_text())
    with pytest.raises(DataError) as caught:
        train_strategy(TrainingRequest(strategy=doc, data_dir=folder, models_dir=tmp_path / "m"))
    message = str(caught.value)
    assert "\n" not in message
    assert message == f"context series cot_EUR: no file {folder / 'context' / 'cot_EUR.csv'}"
