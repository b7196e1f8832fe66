"""Config problems reach the client at the request field that caused them, placed by the
location the pipeline attaches to each problem (never by reading its text)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from libs.pipeline.config.errors import ConfigIssue, StrategyConfigError
from libs.pipeline.config.strategy import apply_overrides, load_strategy
from services.api.errors import FieldError, Problem
from services.api.schemas import SubmitTraining
from services.api.strategy_files import load_config
from services.api.submission import override_error

TINY = Path(__file__).parent / "fixtures" / "tiny_rsi.yaml"


def override_fields(body: SubmitTraining) -> list[FieldError]:
    base = load_strategy(yaml.safe_load(TINY.read_text()))
    with pytest.raises(StrategyConfigError) as info:
        apply_overrides(
            base, symbols=body.symbols, timeframes=body.timeframes, overrides=body.overrides
        )
    return [override_error(issue, body) for issue in info.value.issues]


def test_a_problem_deep_inside_an_override_names_that_override() -> None:
    body = SubmitTraining(
        strategy="tiny_rsi", overrides={"lr_scheduler": {"type": "step", "factor": 0.5}}
    )
    (error,) = override_fields(body)
    assert error.field == "overrides.lr_scheduler.factor"
    assert error.reason.startswith("no effect with type step")


def test_every_field_without_effect_is_named_on_its_own() -> None:
    body = SubmitTraining(
        strategy="tiny_rsi",
        overrides={"lr_scheduler": {"type": "step", "factor": 0.5, "patience": 3}},
    )
    fields = sorted(error.field for error in override_fields(body))
    assert fields == ["overrides.lr_scheduler.factor", "overrides.lr_scheduler.patience"]


def test_a_list_element_of_a_dotted_override_keeps_its_index() -> None:
    body = SubmitTraining(
        strategy="tiny_rsi", overrides={"model.architecture.hidden_layers": [8, 0]}
    )
    (error,) = override_fields(body)
    assert error.field == "overrides.model.architecture.hidden_layers[1]"


def test_the_location_places_the_problem_not_the_message_text() -> None:
    # A message that reads like "other.path: ..." must not move the problem elsewhere.
    issue = ConfigIssue(("model", "training", "epochs"), "symbols: looks like a path, is not")
    body = SubmitTraining(strategy="tiny_rsi", symbols=["EURUSD"], overrides={"epochs": 0})
    error = override_error(issue, body)
    assert error == FieldError("overrides.epochs", "symbols: looks like a path, is not")


def test_symbols_and_unknown_overrides() -> None:
    body = SubmitTraining(strategy="tiny_rsi", symbols=["EUR..USD"], overrides={"epoch": 3})
    fields = {e.field for e in override_fields(body)}
    assert fields == {"overrides.epoch"}  # unknown overrides are reported before anything else
    body = SubmitTraining(strategy="tiny_rsi", symbols=["EUR..USD"])
    (error,) = override_fields(body)
    assert error.field == "symbols" and "not valid symbols" in error.reason


def test_strategy_problems_are_placed_under_the_field_that_carried_the_strategy() -> None:
    document = yaml.safe_load(TINY.read_text())
    document["indicators"][0]["period"] = 1
    document["fuzzy_sets"][next(iter(document["fuzzy_sets"]))] = {"low": [0, 40, 30]}
    with pytest.raises(Problem) as info:
        load_config(document, field="strategy_yaml")
    fields = sorted(e.field for e in info.value.errors)
    first_input = next(iter(document["fuzzy_sets"]))
    assert fields == sorted(
        ["strategy_yaml.indicators[0].period", f"strategy_yaml.fuzzy_sets.{first_input}.low"]
    )
