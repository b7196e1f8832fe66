"""The strategy file as written (either KTRDR layout) and the cross-checks that need the whole
file: symbols and timeframes, the base timeframe, and fuzzy inputs that refer to indicators."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from libs.pipeline import timeframes as tf
from libs.pipeline.config_models import FuzzyInputConfig, IndicatorConfig, Section
from libs.pipeline.config_training import ModelConfig, TrainingSection, V1Data, V2Data

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # becomes a folder under models/
SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")  # becomes part of a data file name


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


def resolve_layout(raw: RawStrategy, problems: list[str]) -> tuple[list[str], list[str], str, int]:
    """symbols, timeframes, base timeframe and history_required from either layout."""
    if raw.data is not None and raw.training_data is not None:
        problems.append("data, training_data: give one (v1 `data:` or v2 `training_data:`)")
    if raw.training_data is not None:
        v2 = raw.training_data
        symbols, frames = list(v2.symbols.names), list(v2.timeframes.names)
        if v2.symbols.mode == "single_symbol" and len(symbols) > 1:
            problems.append(
                f"training_data.symbols: mode single_symbol with {len(symbols)} "
                "symbols; use mode: multi_symbol"
            )
        if v2.timeframes.mode == "single_timeframe" and len(frames) > 1:
            problems.append(
                f"training_data.timeframes: mode single_timeframe with {len(frames)} "
                "timeframes; use mode: multi_timeframe"
            )
        base = v2.timeframes.base_timeframe or frames[0]
        return symbols, frames, base, v2.history_required
    if raw.data is not None:
        return (
            list(raw.data.symbols),
            list(raw.data.timeframes),
            raw.data.timeframes[0],
            (raw.data.history_required),
        )
    problems.append("training_data: required (or the v1 `data:` section)")
    return [], [], "", 0


def check_names(raw: RawStrategy, symbols: list[str], frames: list[str], base: str) -> list[str]:
    where = "training_data." if raw.training_data is not None else "data."
    name, problems = raw.name, []
    if not NAME.match(name):
        problems.append(
            f"name: {name!r} must be 1-100 letters, digits, _ . - (it names a folder under models/)"
        )
    for label, values in (("symbols", symbols), ("timeframes", frames)):
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            problems.append(f"{where}{label}: listed more than once: {', '.join(duplicates)}")
    bad_symbols = [s for s in symbols if not SYMBOL.match(s)]
    if bad_symbols:
        problems.append(
            f"{where}symbols: {bad_symbols} are not valid symbols (letters, digits, . _ -)"
        )
    unknown = [f for f in frames if not tf.is_timeframe(f)]
    if unknown:
        problems.append(
            f"{where}timeframes: unknown {unknown}; valid timeframes: {', '.join(tf.TIMEFRAMES)}"
        )
    if frames and base not in frames:
        problems.append(
            f"training_data.timeframes.base_timeframe: {base!r} is not one of the "
            f"timeframes {frames}"
        )
    return problems


def check_references(raw: RawStrategy) -> list[str]:
    problems = []
    ids = [indicator.feature_id for indicator in raw.indicators]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(
            f"indicators: feature_id {duplicate!r} is used by several indicators; "
            "give each a distinct feature_id"
        )
    valid: dict[str, str] = {}
    for indicator in raw.indicators:
        valid[indicator.feature_id] = indicator.feature_id
        for output in indicator.spec.outputs:
            valid[f"{indicator.feature_id}.{output}"] = indicator.feature_id
    used = {valid[key] for key in raw.fuzzy_sets if key in valid}
    for key in raw.fuzzy_sets:
        if key not in valid:
            problems.append(
                f"fuzzy_sets.{key}: refers to no indicator; valid inputs: {', '.join(valid)}"
            )
    for feature_id in ids:
        if feature_id not in used:
            problems.append(
                f"indicators: {feature_id!r} has no fuzzy_sets entry, so it would "
                "have no effect; add fuzzy sets for it or remove it"
            )
    return problems
