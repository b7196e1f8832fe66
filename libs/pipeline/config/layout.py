"""The strategy file as written (any KTRDR layout: v1 `data:`, v2 `training_data:` with an
indicator list, v3 with an indicator mapping, `nn_inputs` and `training.*` hyper-parameters)
and the cross-checks that need the whole file: symbols and timeframes, the base timeframe,
fuzzy inputs that refer to indicators, model inputs that refer to both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from libs.pipeline import names
from libs.pipeline.config.context import ContextSeriesConfig
from libs.pipeline.config.errors import ConfigIssue
from libs.pipeline.config.sections import (
    FuzzyInputConfig,
    IndicatorConfig,
    NnInputConfig,
    Section,
)
from libs.pipeline.config.training import (
    ModelConfig,
    TrainingParams,
    TrainingSection,
    V1Data,
    V2Data,
)
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
    nn_inputs: list[NnInputConfig] | None = Field(default=None, min_length=1)
    context_data: list[ContextSeriesConfig] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingSection = Field(default_factory=TrainingSection)

    @field_validator("indicators", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        """v3: `{id: {type, <parameters>}}`, the key being the feature_id."""
        if not isinstance(value, Mapping):
            return value
        return [
            {**item, "feature_id": key} if isinstance(item, Mapping) else item
            for key, item in value.items()
        ]

    @model_validator(mode="after")
    def _one_place_for_hyper_parameters(self) -> RawStrategy:
        """training.* (v3) and model.training.* (v2) merged; a field set in both is an error."""
        v3 = self.training.hyper.model_fields_set
        v2 = self.model.training.model_fields_set
        both = sorted(v3 & v2)
        if both:
            raise ValueError(
                "; ".join(
                    f"training.{k} and model.training.{k} both set; keep one (training.{k})"
                    for k in both
                )
            )
        if v3:
            merged = self.model.training.model_copy(
                update={k: getattr(self.training.hyper, k) for k in v3}
            )
            # Re-validated: the merge can pair fields the halves checked apart (focal_gamma
            # with a loss given in the other place).
            merged = TrainingParams.model_validate(merged.model_dump(exclude_unset=False))
            model = self.model.model_copy(update={"training": merged})
            object.__setattr__(self, "model", model)
            # One place from here on: model.training (training.hyper back to its defaults).
            training = self.training.model_copy(update={"hyper": TrainingParams()})
            object.__setattr__(self, "training", training)
        return self

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
        if v2.symbols.mode in ("single_symbol", "single") and len(symbols) > 1:
            message = f"mode single_symbol with {len(symbols)} symbols; use mode: multi_symbol"
            issues.append(ConfigIssue(("training_data", "symbols"), message))
        if v2.timeframes.mode in ("single_timeframe", "single") and len(frames) > 1:
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
    used: set[str] = set()
    for key, fuzzy in raw.fuzzy_sets.items():
        target = fuzzy.indicator or key
        where: tuple[str, ...] = (
            ("fuzzy_sets", key, "indicator")
            if fuzzy.indicator
            else (
                "fuzzy_sets",
                key,
            )
        )
        if target in valid:
            used.add(valid[target])
        else:
            message = f"refers to no indicator; valid inputs: {', '.join(valid)}"
            issues.append(ConfigIssue(where, message, "reference"))
    if raw.nn_inputs is not None:
        issues += _check_nn_inputs(raw, valid, used)
    issues += _check_data_sources(raw)
    for feature_id in ids:
        if feature_id not in used:
            message = (
                f"{feature_id!r} has no fuzzy_sets entry"
                + (" and is no raw_indicator input" if raw.nn_inputs is not None else "")
                + ", so it would have no effect; use it or remove it"
            )
            issues.append(ConfigIssue(("indicators",), message, "reference"))
    return issues


def _check_nn_inputs(raw: RawStrategy, valid: dict[str, str], used: set[str]) -> list[ConfigIssue]:
    """Every input refers to a fuzzy set or an indicator output, lists known timeframes, and
    every fuzzy set is an input (one that is not would have no effect)."""
    assert raw.nn_inputs is not None
    issues = []
    for key in ("scale_features", "scaling_method"):
        if key in raw.model.features.model_fields_set:
            message = "no effect with nn_inputs: give each input its normalization instead"
            issues.append(ConfigIssue(("model", "features", key), message))
    fuzzy_used: set[str] = set()
    frames = _timeframes(raw)
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(raw.nn_inputs):
        if item.fuzzy_set is not None:
            ref, kind = item.fuzzy_set, "fuzzy_set"
            if ref not in raw.fuzzy_sets:
                message = f"no fuzzy set {ref!r}; fuzzy sets: {', '.join(raw.fuzzy_sets)}"
                issues.append(ConfigIssue(("nn_inputs", i, "fuzzy_set"), message, "reference"))
            fuzzy_used.add(ref)
        else:
            ref, kind = str(item.raw_indicator), "raw_indicator"
            if ref in valid:
                used.add(valid[ref])
            else:
                message = f"refers to no indicator output; valid: {', '.join(valid)}"
                issues.append(ConfigIssue(("nn_inputs", i, "raw_indicator"), message, "reference"))
        if (kind, ref) in seen:
            message = f"{kind} {ref!r} is listed more than once"
            issues.append(ConfigIssue(("nn_inputs", i), message))
        seen.add((kind, ref))
        if isinstance(item.timeframes, list) and frames:
            unknown = [t for t in item.timeframes if t not in frames]
            if unknown:
                message = f"{unknown} are not among the strategy's timeframes {frames}"
                issues.append(ConfigIssue(("nn_inputs", i, "timeframes"), message, "reference"))
    for key in raw.fuzzy_sets:
        if key not in fuzzy_used:
            message = "is not in nn_inputs, so it would have no effect; add it or remove it"
            issues.append(ConfigIssue(("fuzzy_sets", key), message, "reference"))
    return issues


CONTEXT_PREFIXES = ("fred_", "yield_spread_", "cot_")


def _check_data_sources(raw: RawStrategy) -> list[ConfigIssue]:
    """A data_source names a context_data series or a symbol (whose data file is read like
    any symbol's); a provider-style name nothing declares is an error."""
    declared = [name for entry in raw.context_data for name in entry.names()]
    issues = []
    duplicates = sorted({n for n in declared if declared.count(n) > 1})
    if duplicates:
        message = f"series declared more than once: {', '.join(duplicates)}"
        issues.append(ConfigIssue(("context_data",), message))
    for i, entry in enumerate(raw.context_data):
        if entry.timeframe is not None and not tf.is_timeframe(entry.timeframe):
            message = f"unknown {entry.timeframe!r}; valid timeframes: {', '.join(tf.TIMEFRAMES)}"
            issues.append(ConfigIssue(("context_data", i, "timeframe"), message))
    for i, indicator in enumerate(raw.indicators):
        source = indicator.data_source
        if source is None or source in declared:
            continue
        if source.startswith(CONTEXT_PREFIXES) or not names.SYMBOL.matches(source):
            message = (
                f"{source!r} is no context_data series; declared: {', '.join(declared) or 'none'}"
            )
            issues.append(ConfigIssue(("indicators", i, "data_source"), message, "reference"))
    return issues


def _timeframes(raw: RawStrategy) -> list[str]:
    if raw.training_data is not None:
        return list(raw.training_data.timeframes.names)
    return list(raw.data.timeframes) if raw.data is not None else []
