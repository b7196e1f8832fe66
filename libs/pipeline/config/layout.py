"""The strategy file as written (either KTRDR layout) and the cross-checks that need the whole
file: symbols and timeframes, the base timeframe, and fuzzy inputs that refer to indicators."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from libs.pipeline import names
from libs.pipeline.config.errors import ConfigIssue
from libs.pipeline.config.sections import FuzzyInputConfig, IndicatorConfig, Section
from libs.pipeline.config.training import ModelConfig, TrainingSection, V1Data, V2Data
from libs.pipeline.data import timeframes as tf


def _number_as_text(value: Any) -> Any:
    # YAML reads `version: 1.0` as a float.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class RawStrategy(Section):
    """The file as written: either layout, before cross-checks."""

    name: str
    description: str = ""
    version: str | None = None
    data: V1Data | None = None
    training_data: V2Data | None = None
    indicators: list[IndicatorConfig] = Field(min_length=1)
    fuzzy_sets: dict[str, FuzzyInputConfig] = Field(min_length=1)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingSection = Field(default_factory=TrainingSection)

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: Any) -> Any:
        return "" if value is None else _number_as_text(value)  # `description:` left empty

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        return _number_as_text(value)


def resolve_layout(
    raw: RawStrategy, issues: list[ConfigIssue]
) -> tuple[list[str], list[str], str, int, str]:
    """symbols, timeframes, base timeframe, history_required and session from either layout."""
    if raw.data is not None and raw.training_data is not None:
        message = "data, training_data: give one (v1 `data:` or v2 `training_data:`)"
        issues.append(ConfigIssue((), message))
    if raw.training_data is not None:
        v2 = raw.training_data
        symbols, frames = list(v2.symbols.names), list(v2.timeframes.names)
        if v2.symbols.mode == "single_symbol" and len(symbols) > 1:
            message = f"mode single_symbol with {len(symbols)} symbols; use mode: multi_symbol"
            issues.append(ConfigIssue(("training_data", "symbols"), message))
        if v2.timeframes.mode == "single_timeframe" and len(frames) > 1:
            message = (
                f"mode single_timeframe with {len(frames)} timeframes; use mode: multi_timeframe"
            )
            issues.append(ConfigIssue(("training_data", "timeframes"), message))
        base = v2.timeframes.base_timeframe or frames[0]
        return symbols, frames, base, v2.history_required, v2.session
    if raw.data is not None:
        return (
            list(raw.data.symbols),
            list(raw.data.timeframes),
            raw.data.timeframes[0],
            raw.data.history_required,
            raw.data.session,
        )
    message = "required (or the v1 `data:` section)"
    issues.append(ConfigIssue(("training_data",), message, "missing"))
    return [], [], "", 0, "utc"


def check_names(
    raw: RawStrategy, symbols: list[str], frames: list[str], base: str
) -> list[ConfigIssue]:
    section = "training_data" if raw.training_data is not None else "data"
    name, issues = raw.name, []
    if not names.STRATEGY.matches(name):
        message = f"{name!r} must be {names.STRATEGY.rule()} (it names a folder under models/)"
        issues.append(ConfigIssue(("name",), message))
    for label, values in (("symbols", symbols), ("timeframes", frames)):
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            message = f"listed more than once: {', '.join(duplicates)}"
            issues.append(ConfigIssue((section, label), message))
    bad_symbols = [s for s in symbols if not names.SYMBOL.matches(s)]
    if bad_symbols:
        message = f"{bad_symbols} are not valid symbols (letters, digits, . _ -)"
        issues.append(ConfigIssue((section, "symbols"), message))
    unknown = [f for f in frames if not tf.is_timeframe(f)]
    if unknown:
        message = f"unknown {unknown}; valid timeframes: {', '.join(tf.TIMEFRAMES)}"
        issues.append(ConfigIssue((section, "timeframes"), message))
    if frames and base not in frames:
        message = f"{base!r} is not one of the timeframes {frames}"
        issues.append(ConfigIssue(("training_data", "timeframes", "base_timeframe"), message))
    return issues


def check_references(raw: RawStrategy) -> list[ConfigIssue]:
    issues = []
    ids = [indicator.feature_id for indicator in raw.indicators]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
        message = (
            f"feature_id {duplicate!r} is used by several indicators; "
            "give each a distinct feature_id"
        )
        issues.append(ConfigIssue(("indicators",), message))
    valid: dict[str, str] = {}
    for indicator in raw.indicators:
        valid[indicator.feature_id] = indicator.feature_id
        for output in indicator.spec.outputs:
            valid[f"{indicator.feature_id}.{output}"] = indicator.feature_id
    used = {valid[key] for key in raw.fuzzy_sets if key in valid}
    for key in raw.fuzzy_sets:
        if key not in valid:
            message = f"refers to no indicator; valid inputs: {', '.join(valid)}"
            issues.append(ConfigIssue(("fuzzy_sets", key), message, "reference"))
    for feature_id in ids:
        if feature_id not in used:
            message = (
                f"{feature_id!r} has no fuzzy_sets entry, so it would "
                "have no effect; add fuzzy sets for it or remove it"
            )
            issues.append(ConfigIssue(("indicators",), message, "reference"))
    return issues
