"""Strategy loading: both KTRDR layouts, the snapshot round trip, and errors that name the
field and the valid alternatives."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from libs.pipeline.config.strategy import (
    OTHER_SUBSYSTEM_SECTIONS,
    StrategyConfigError,
    apply_overrides,
    load_strategy,
)

from .conftest import REPO

V1_YAML = """
name: neuro_mean_reversion
description: "rsi + sma"
version: "1.0"
data:
  symbols: [EURUSD]
  timeframes: [1h, 4h]
  history_required: 200
indicators:
  - {name: rsi, feature_id: rsi_14, period: 14, source: close}
  - {name: sma, feature_id: sma_20, period: 20, source: close}
fuzzy_sets:
  rsi_14:
    oversold: [0, 10, 30]
    neutral: {type: trapezoidal, parameters: [25, 40, 60, 75]}
    overbought: {type: gaussian, parameters: [85, 8]}
  sma_20:
    input_transform: {type: price_ratio, reference: close}
    below: [0.95, 0.98, 1.0]
model:
  type: mlp
  architecture: {hidden_layers: [30, 15, 8], activation: relu, dropout: 0.2}
  features: {lookback_periods: 3, scale_features: true, scaling_method: standard}
  training:
    learning_rate: 0.001
    batch_size: 32
    epochs: 100
    optimizer: adam
    weight_decay: 0.0001
    lr_scheduler: {type: reduce_on_plateau, factor: 0.5, patience: 10}
    early_stopping: {patience: 15, monitor: val_loss, min_delta: 0.0001}
    gradient_clip: 1.0
decisions: {output_format: classification, confidence_threshold: 0.6}
training:
  method: supervised
  labels: {source: zigzag, zigzag_threshold: 0.05, label_lookahead: 20}
  data_split: {train: 0.7, validation: 0.15, test: 0.15}
"""

V2_DATA = """
training_data:
  symbols: {mode: single_symbol, list: [EURUSD]}
  timeframes: {mode: multi_timeframe, list: [1h, 4h], base_timeframe: 1h}
  history_required: 200
"""


def v2_yaml() -> str:
    head, rest = V1_YAML.split("data:\n", 1)
    rest = rest.split("indicators:", 1)[1]
    return head + V2_DATA.lstrip("\n") + "indicators:" + rest


def load_text(text: str):
    return load_strategy(yaml.safe_load(text))


def problems_of(source) -> list[str]:
    with pytest.raises(StrategyConfigError) as info:
        load_strategy(yaml.safe_load(source) if isinstance(source, str) else source)
    return info.value.problems


def test_v1_and_v2_layouts_give_the_same_config():
    v1, v2 = load_text(V1_YAML), load_text(v2_yaml())
    assert v1 == v2
    assert v1.symbols == ["EURUSD"] and v1.timeframes == ["1h", "4h"]
    assert v1.base_timeframe == "1h" and v1.history_required == 200


def test_fields_are_resolved_with_their_meaning():
    cfg = load_text(V1_YAML)
    assert cfg.model.architecture.hidden_layers == [30, 15, 8]
    assert cfg.model.training.lr_scheduler.type == "reduce_on_plateau"
    assert cfg.model.training.lr_scheduler.patience == 10
    assert cfg.model.training.lr_scheduler.step_size is None  # not used by this type
    assert cfg.model.training.early_stopping.monitor == "val_loss"
    assert cfg.fuzzy_sets["rsi_14"].sets["oversold"].type == "triangular"  # shorthand
    assert cfg.fuzzy_sets["rsi_14"].sets["overbought"].parameters == [85.0, 8.0]
    assert cfg.fuzzy_sets["sma_20"].input_transform.reference == "close"
    assert cfg.training.labels.zigzag_threshold == 0.05


def test_snapshot_round_trips_and_is_json():
    import json

    cfg = load_text(V1_YAML)
    snapshot = json.loads(json.dumps(cfg.snapshot()))
    assert load_strategy(snapshot) == cfg
    assert snapshot["decisions"] == {"output_format": "classification", "confidence_threshold": 0.6}


def test_v2_base_timeframe_other_than_first():
    cfg = load_text(v2_yaml().replace("base_timeframe: 1h", "base_timeframe: 4h"))
    assert cfg.base_timeframe == "4h"
    assert load_strategy(cfg.snapshot()).base_timeframe == "4h"


@pytest.mark.parametrize("path", sorted((REPO / "strategies").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_strategies_load(path: Path):
    cfg = load_strategy(path)
    assert cfg.name == path.stem
    assert load_strategy(cfg.snapshot()) == cfg


def test_shipped_strategies_cover_single_multi_timeframe_and_multi_symbol():
    configs = [load_strategy(p) for p in (REPO / "strategies").glob("*.yaml")]
    assert any(c.timeframes == ["1h", "4h", "1d"] for c in configs)
    assert any(len(c.symbols) == 4 and c.timeframes == ["1d"] for c in configs)
    nmr = load_strategy(REPO / "strategies" / "neuro_mean_reversion.yaml")
    assert nmr.symbols == ["EURUSD"] and nmr.timeframes == ["1h"]
    assert {i.name for i in nmr.indicators} >= {"rsi", "macd", "sma"}
    assert any(f.input_transform for f in nmr.fuzzy_sets.values())


def test_other_subsystem_sections_are_kept_and_reported(strategy):
    doc = strategy(
        risk_management={"risk_per_trade": 0.02},
        scope="universal",
        backtesting={"start_date": yaml.safe_load("2020-01-01")},
    )
    cfg = load_strategy(doc)
    assert cfg.unused_sections == ["risk_management", "scope", "backtesting"]
    assert cfg.snapshot()["backtesting"] == {"start_date": "2020-01-01"}  # dates made JSON-able
    assert load_strategy(cfg.snapshot()) == cfg
    assert "decisions" in OTHER_SUBSYSTEM_SECTIONS


def test_unknown_field_names_it_and_the_valid_fields():
    (problem,) = problems_of(V1_YAML.replace("    optimizer: adam", "    optimiser: adam"))
    assert problem.startswith("model.training.optimiser: unknown field")
    assert "valid fields: learning_rate, batch_size, epochs, optimizer" in problem


def test_misplaced_field_points_to_where_it_belongs():
    (problem,) = problems_of(V1_YAML.replace("  type: mlp", "  type: mlp\n  epochs: 4"))
    assert problem.startswith("model.epochs: unknown field")
    assert "did you mean model.training.epochs" in problem


def test_unknown_top_level_section_lists_the_known_ones():
    (problem,) = problems_of(V1_YAML.replace("decisions:", "decisionz:"))
    assert problem.startswith("decisionz: unknown field")
    assert "risk_management" in problem and "training_data" in problem


def test_bad_enum_lists_valid_values():
    (problem,) = problems_of(V1_YAML.replace("activation: relu", "activation: swish"))
    assert problem.startswith("model.architecture.activation: 'swish' is not valid")
    assert "'gelu'" in problem and "'leaky_relu'" in problem


@pytest.mark.parametrize(
    ("old", "new", "path", "detail"),
    [
        ("oversold: [0, 10, 30]", "oversold: [0, 40, 30]", "fuzzy_sets.rsi_14.oversold", "a <= b"),
        ("oversold: [0, 10, 30]", "oversold: [0, 30]", "fuzzy_sets.rsi_14.oversold", "3 numbers"),
        ("[85, 8]", "[85, 0]", "fuzzy_sets.rsi_14.overbought", "sigma > 0"),
        ("[25, 40, 60, 75]", "[25, 40, 80, 75]", "fuzzy_sets.rsi_14.neutral", "c <= d"),
        ("type: gaussian", "type: bell", "fuzzy_sets.rsi_14.overbought.type", "triangular"),
    ],
)
def test_bad_fuzzy_parameters_name_the_set(old, new, path, detail):
    (problem,) = problems_of(V1_YAML.replace(old, new))
    assert problem.startswith(path) and detail in problem


def test_indicator_problems_are_all_listed_with_valid_parameters():
    problems = problems_of(V1_YAML.replace("period: 14, source: close", "length: 14, source: hl2"))
    assert "indicators[0].length: unknown parameter for rsi; valid parameters: period, source" in (
        problems
    )
    assert any(p.startswith("indicators[0].source:") and "close" in p for p in problems)


def test_unknown_indicator_lists_known_names():
    (problem,) = problems_of(V1_YAML.replace("name: rsi,", "name: rsx,"))
    assert problem.startswith("indicators[0].name: unknown indicator 'rsx'")
    assert "bollinger_bands" in problem and "williams_r" in problem


def test_cross_checks_report_every_problem():
    text = V1_YAML.replace("  rsi_14:\n", "  rsi_15:\n").replace("[1h, 4h]", "[1h, 3h]")
    problems = problems_of(text)
    assert any(
        p.startswith("fuzzy_sets.rsi_15: refers to no indicator; valid inputs: rsi_14")
        for p in problems
    )
    assert any("'rsi_14' has no fuzzy_sets entry" in p for p in problems)
    assert any(p.startswith("data.timeframes: unknown ['3h']") for p in problems)


def test_multi_output_references(strategy):
    doc = strategy()
    doc["fuzzy_sets"]["macd_12_26_9.volume"] = {"x": [0, 1, 2]}
    (problem,) = problems_of(doc)
    assert "macd_12_26_9.signal" in problem and "macd_12_26_9.histogram" in problem


def test_data_split_must_sum_to_one():
    (problem,) = problems_of(V1_YAML.replace("test: 0.15", "test: 0.25"))
    assert problem.startswith("training.data_split") and "must be 1" in problem


def test_a_strategy_cannot_be_named_tenants():
    """`models/tenants/` holds the service's per-tenant trees beside the strategy folders."""
    (problem,) = problems_of(V1_YAML.replace("name: neuro_mean_reversion", "name: tenants"))
    assert problem.startswith("name") and "not 'tenants'" in problem


def test_base_timeframe_must_be_listed():
    (problem,) = problems_of(v2_yaml().replace("base_timeframe: 1h", "base_timeframe: 1d"))
    assert "base_timeframe" in problem and "'1d'" in problem


def test_scheduler_field_of_another_type_is_refused():
    (problem,) = problems_of(V1_YAML.replace("factor: 0.5,", "step_size: 4,"))
    assert problem.startswith("model.training.lr_scheduler.step_size: no effect")


def test_scaling_method_without_scaling_is_refused():
    (problem,) = problems_of(V1_YAML.replace("scale_features: true", "scale_features: false"))
    assert problem.startswith("model.features.scaling_method: no effect")


def test_ktrdr_details_bollinger_alias_default_feature_id_and_early_stopping_flag(strategy):
    doc = strategy(indicators=[{"name": "bollinger_bands", "period": 10}])
    doc["fuzzy_sets"] = {"bollinger_bands.lower": {"x": [0, 1, 2]}}
    doc["model"]["training"]["early_stopping"] = {"enabled": False, "patience": 3}
    cfg = load_strategy(doc)
    (indicator,) = cfg.indicators
    assert (indicator.name, indicator.feature_id) == ("bbands", "bollinger_bands")
    assert indicator.params == {"period": 10, "multiplier": 2.0, "source": "close"}
    assert cfg.model.training.early_stopping is None


def test_missing_layout_and_missing_file():
    doc = yaml.safe_load(V1_YAML)
    del doc["data"]
    (problem,) = problems_of(doc)
    assert problem.startswith("training_data: required")
    (problem,) = problems_of(Path("strategies/does_not_exist.yaml"))
    assert "does_not_exist.yaml" in problem


def test_overrides_are_applied_and_revalidated():
    cfg = load_text(V1_YAML)
    new = apply_overrides(
        cfg,
        symbols=["AAPL", "MSFT"],
        timeframes=["1d"],
        overrides={"epochs": 5, "dropout": 0.1, "optimizer": "sgd", "model.training.batch_size": 7},
    )
    assert new.model.training.epochs == 5 and new.model.architecture.dropout == 0.1
    assert new.model.training.optimizer == "sgd" and new.model.training.batch_size == 7
    assert (new.symbols, new.timeframes, new.base_timeframe) == (["AAPL", "MSFT"], ["1d"], "1d")
    assert cfg.model.training.epochs == 100  # the original is untouched


def test_unknown_override_names_the_valid_ones():
    with pytest.raises(StrategyConfigError) as info:
        apply_overrides(load_text(V1_YAML), overrides={"epoch": 3})
    (problem,) = info.value.problems
    assert problem.startswith("overrides.epoch: unknown override")
    assert "epochs" in problem and "learning_rate" in problem


def test_bad_override_value_names_the_field():
    with pytest.raises(StrategyConfigError) as info:
        apply_overrides(load_text(V1_YAML), overrides={"batch_size": 0})
    assert info.value.problems[0].startswith("model.training.batch_size:")


def test_turning_scaling_off_by_override_drops_the_method():
    cfg = apply_overrides(load_text(V1_YAML), overrides={"scale_features": False})
    assert cfg.model.features.scale_features is False


def issues_of(text: str) -> list:
    with pytest.raises(StrategyConfigError) as info:
        load_text(text)
    return info.value.issues


def test_problems_carry_their_location_as_data():
    text = V1_YAML.replace("period: 14, source: close", "period: 1, source: close")
    text = text.replace("oversold: [0, 10, 30]", "oversold: [0, 40, 30]")
    text = text.replace("[1h, 4h]", "[1h, 3h]")
    located = {issue.loc: issue for issue in issues_of(text)}
    assert set(located) >= {
        ("indicators", 0, "period"),
        ("fuzzy_sets", "rsi_14", "oversold"),  # the internal `sets` level is not in the YAML
    }
    assert located[("indicators", 0, "period")].message == "must be >= 2, got 1"
    (cross,) = issues_of(V1_YAML.replace("[1h, 4h]", "[1h, 3h]"))
    assert (cross.loc, cross.kind) == (("data", "timeframes"), "invalid")
    (unknown,) = issues_of(V1_YAML.replace("    optimizer: adam", "    optimiser: adam"))
    assert (unknown.loc, unknown.kind) == (("model", "training", "optimiser"), "unknown_field")


def test_override_problems_are_located_in_the_strategy_or_the_overrides():
    cfg = load_text(V1_YAML)
    with pytest.raises(StrategyConfigError) as info:
        apply_overrides(cfg, overrides={"epoch": 3})
    (issue,) = info.value.issues
    assert (issue.loc, issue.kind) == (("overrides", "epoch"), "unknown_override")
    with pytest.raises(StrategyConfigError) as info:
        apply_overrides(cfg, overrides={"lr_scheduler": {"type": "step", "factor": 0.5}})
    (issue,) = info.value.issues
    assert issue.loc == ("model", "training", "lr_scheduler", "factor")


def test_a_string_is_never_read_as_a_file_name():
    with pytest.raises(TypeError, match="Path or a mapping"):
        load_strategy("strategies/neuro_mean_reversion.yaml")
