"""Strategy configuration: load a KTRDR strategy (v3, or the older v1 `data:` / v2
`training_data:` layouts), validate it completely, and give back one frozen, fully resolved
`StrategyConfig`.

Validation happens in two passes: pydantic checks each section's shape (unknown fields, types,
ranges, enums -- all problems at once), then cross-checks that need the whole file (fuzzy
inputs refer to indicators, timeframes are known, the base timeframe is one of them, ...).
Either pass raises one StrategyConfigError listing every problem it found, each with its
location in the document.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from libs.pipeline.config.context import ContextSeriesConfig
from libs.pipeline.config.errors import ConfigIssue, StrategyConfigError, describe
from libs.pipeline.config.layout import RawStrategy, check_names, check_references, resolve_layout
from libs.pipeline.config.overrides import overridden_snapshot
from libs.pipeline.config.sections import (
    FuzzyInputConfig,
    IndicatorConfig,
    NnInputConfig,
    Section,
)
from libs.pipeline.config.training import (
    CLASSIFICATION_LOSSES,
    REGRESSION_LOSSES,
    SEQUENCE_MODELS,
    THRESHOLDS,
    ModelConfig,
    Session,
    TrainingSection,
)
from libs.pipeline.data import timeframes as tf
from libs.pipeline.jsonable import jsonable

# Top-level KTRDR sections that belong to other subsystems (live decisions, risk, backtests,
# deployment, research notes). Training accepts them, keeps them in the snapshot, and reports
# them once as not used -- it never drops them silently.
OTHER_SUBSYSTEM_SECTIONS: tuple[str, ...] = (
    "decisions",
    "risk_management",
    "backtesting",
    "deployment",
    "scope",
    "hypothesis",
    "orchestrator",
    "metadata",
)


class StrategyConfig(Section):
    name: str
    description: str = ""
    version: str | None = None
    symbols: list[str]
    timeframes: list[str]
    base_timeframe: str
    history_required: int = 0  # bars before the first usable row
    session: Session = "utc"  # how daily/weekly bars are resampled
    start_date: str | None = None  # the default range of a training (a request overrides it)
    end_date: str | None = None
    indicators: list[IndicatorConfig]
    # key: feature_id or feature_id.output (v1/v2), any id with `indicator` set (v3)
    fuzzy_sets: dict[str, FuzzyInputConfig]
    # None (v1/v2, or v3 without nn_inputs): every fuzzy set on every timeframe, scaled as
    # model.features says.
    nn_inputs: list[NnInputConfig] | None = None
    context_data: list[ContextSeriesConfig] = Field(default_factory=list)
    model: ModelConfig
    training: TrainingSection
    output_format: Literal["classification", "regression"] = "classification"
    other_sections: dict[str, Any] = Field(default_factory=dict)
    unused_sections: list[str] = Field(default_factory=list)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes of a classification head, in label order; () for regression."""
        return () if self.output_format == "regression" else self.training.labels.class_names

    @property
    def sequence_length(self) -> int:
        """Rows per model input: a window of past rows for LSTM/GRU, 1 for the MLP."""
        if self.model.type in SEQUENCE_MODELS:
            return int(self.model.architecture.sequence_length or 1)
        return 1

    def indicator(self, feature_id: str) -> IndicatorConfig:
        for indicator in self.indicators:
            if indicator.feature_id == feature_id:
                return indicator
        raise KeyError(feature_id)

    def fuzzy_source(self, key: str) -> tuple[IndicatorConfig, str]:
        """The indicator a fuzzy input reads and the indicator column holding its values."""
        return self.indicator_column(self.fuzzy_sets[key].indicator or key)

    def indicator_column(self, ref: str) -> tuple[IndicatorConfig, str]:
        """`feature_id` or `feature_id.output` -> the indicator and its column's name."""
        feature_id, _, output = ref.partition(".")
        indicator = self.indicator(feature_id)
        if not output or output == indicator.spec.primary:
            return indicator, feature_id
        return indicator, ref

    @property
    def warmup_bars(self) -> int:
        """Bars of each timeframe before every indicator has converged and every lag exists."""
        longest = max(i.spec.warmup(i.params) for i in self.indicators)
        return longest + self.model.features.lookback_periods + self.sequence_length - 1

    @property
    def history_bars(self) -> int:
        """Bars loaded before the first usable row (and before `start`)."""
        return max(self.history_required, self.warmup_bars)

    def snapshot(self) -> dict[str, Any]:
        """The full resolved strategy as a JSON-able KTRDR (v2 layout) mapping;
        `load_strategy(cfg.snapshot()) == cfg`."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.version is not None:
            out["version"] = self.version
        several_symbols, several_tfs = len(self.symbols) > 1, len(self.timeframes) > 1
        out["training_data"] = {
            "symbols": {
                "mode": "multi_symbol" if several_symbols else "single_symbol",
                "list": list(self.symbols),
            },
            "timeframes": {
                "mode": "multi_timeframe" if several_tfs else "single_timeframe",
                "list": list(self.timeframes),
                "base_timeframe": self.base_timeframe,
            },
            "history_required": self.history_required,
            "session": self.session,
        }
        for key in ("start_date", "end_date"):
            if getattr(self, key) is not None:
                out["training_data"][key] = getattr(self, key)
        out["indicators"] = [indicator.to_ktrdr() for indicator in self.indicators]
        out["fuzzy_sets"] = {key: fuzzy.to_ktrdr() for key, fuzzy in self.fuzzy_sets.items()}
        if self.nn_inputs is not None:
            out["nn_inputs"] = [item.to_ktrdr() for item in self.nn_inputs]
        if self.context_data:
            out["context_data"] = [entry.to_ktrdr() for entry in self.context_data]
        out["model"] = self.model.to_ktrdr()
        if self.nn_inputs is not None:  # scaling is per input: model.features keeps the lags
            out["model"]["features"] = {"lookback_periods": self.model.features.lookback_periods}
        out["training"] = self.training.to_ktrdr()
        out.update(copy.deepcopy(self.other_sections))
        return out


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        message = f"cannot read strategy file {path}: {exc.strerror}"
        raise StrategyConfigError([ConfigIssue((), message, "unreadable")]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        message = f"not valid YAML: {exc}"
        raise StrategyConfigError([ConfigIssue((), message, "unreadable")]) from exc


def load_strategy(source: Path | Mapping[str, Any]) -> StrategyConfig:
    """A strategy from a YAML file or from a mapping (parsed YAML, a snapshot).

    Never from a string: text that happened to name a file would be read from disk. Callers
    holding YAML text parse it themselves (the API with its size and alias limits)."""
    if isinstance(source, Path):
        document = _read(source)
    elif isinstance(source, Mapping):
        document = source
    else:
        raise TypeError(
            f"load_strategy takes a Path or a mapping, not {type(source).__name__}; "
            "parse YAML text first"
        )
    if not isinstance(document, Mapping):
        message = "the strategy must be a YAML mapping of sections"
        raise StrategyConfigError([ConfigIssue((), message, "unreadable")])
    body = {k: v for k, v in document.items() if k not in OTHER_SUBSYSTEM_SECTIONS}
    # YAML extras (dates, tuples) made JSON-able, so other sections survive the snapshot.
    others = {str(k): jsonable(v) for k, v in document.items() if k in OTHER_SUBSYSTEM_SECTIONS}
    indicator_ids = _mapping_keys(body.get("indicators"))
    try:
        raw = RawStrategy.model_validate(body)
    except ValidationError as exc:
        found = describe(exc, RawStrategy, OTHER_SUBSYSTEM_SECTIONS)
        raise StrategyConfigError([_by_id(i, indicator_ids) for i in found]) from None
    issues: list[ConfigIssue] = []
    symbols, frames, base, history, session = resolve_layout(raw, issues)
    issues += check_names(raw, symbols, frames, base)
    issues += check_references(raw)
    output_format = _output_format(others.get("decisions"), issues)
    decisions = others.get("decisions")
    num_classes = decisions.get("num_classes") if isinstance(decisions, Mapping) else None
    issues += _check_head(raw, output_format, base, num_classes)
    if issues:
        raise StrategyConfigError([_by_id(i, indicator_ids) for i in issues])
    evaluation = _cost_from_decisions(raw.training, others.get("decisions"), issues)
    if issues:
        raise StrategyConfigError(issues)
    labels = raw.training.labels
    if output_format == "classification" and labels.source in THRESHOLDS:
        bullish, bearish = THRESHOLDS[labels.source]
        labels = labels.model_copy(
            update={
                "bullish_threshold": _given(labels.bullish_threshold, bullish),
                "bearish_threshold": _given(labels.bearish_threshold, bearish),
            }
        )
    return StrategyConfig(
        name=raw.name,
        description=raw.description,
        version=raw.version,
        symbols=symbols,
        timeframes=frames,
        base_timeframe=base,
        history_required=history,
        session=session,  # type: ignore[arg-type]
        start_date=raw.training_data.start_date if raw.training_data else None,
        end_date=raw.training_data.end_date if raw.training_data else None,
        indicators=raw.indicators,
        fuzzy_sets=raw.fuzzy_sets,
        nn_inputs=raw.nn_inputs,
        context_data=raw.context_data,
        model=raw.model,
        training=raw.training.model_copy(update={"evaluation": evaluation, "labels": labels}),
        output_format=output_format,  # type: ignore[arg-type]
        other_sections=others,
        unused_sections=list(others),
    )


def _given(value: float | None, default: float) -> float:
    return default if value is None else value


def _mapping_keys(indicators: Any) -> list[str] | None:
    return [str(k) for k in indicators] if isinstance(indicators, Mapping) else None


def _by_id(issue: ConfigIssue, ids: list[str] | None) -> ConfigIssue:
    """A v3 indicator's problem placed at its id (`indicators.rsi_14.period`), not at the
    position the list form gives it."""
    loc = issue.loc
    if ids is None or len(loc) < 2 or loc[0] != "indicators" or not isinstance(loc[1], int):
        return issue
    return replace(issue, loc=("indicators", ids[loc[1]], *loc[2:]))


OUTPUT_FORMATS = ("classification", "regression")


def _output_format(decisions: Any, issues: list[ConfigIssue]) -> str:
    """decisions.output_format chooses the model's head (the rest of decisions belongs to the
    live decision subsystem)."""
    if not isinstance(decisions, Mapping):
        return "classification"
    value = decisions.get("output_format", "classification")
    if value not in OUTPUT_FORMATS:
        message = f"{value!r} is not valid; valid values: {', '.join(OUTPUT_FORMATS)}"
        issues.append(ConfigIssue(("decisions", "output_format"), message))
        return "classification"
    return str(value)


def _check_head(
    raw: RawStrategy, output_format: str, base: str, num_classes: Any = None
) -> list[ConfigIssue]:
    """The head, the labels and the loss agree: regression only on forward returns, a
    classification loss for classes, num_classes equal to the label source's classes."""
    labels, params, issues = raw.training.labels, raw.model.training, []
    decisions_loc = ("decisions", "output_format")
    if num_classes is not None:
        expected = 1 if output_format == "regression" else len(labels.class_names)
        if isinstance(num_classes, bool) or num_classes != expected:
            message = f"{num_classes!r} does not match the labels: {labels.source} gives " + (
                "one regression output"
                if output_format == "regression"
                else f"{expected} classes ({', '.join(labels.class_names)})"
            )
            issues.append(ConfigIssue(("decisions", "num_classes"), message))
    if output_format == "regression":
        if labels.source != "forward_return":
            message = (
                f"regression needs labels.source forward_return (a return to predict); "
                f"{labels.source} gives classes"
            )
            issues.append(ConfigIssue(decisions_loc, message))
        for key in ("bullish_threshold", "bearish_threshold"):
            if getattr(labels, key) is not None:
                message = "no effect with output_format regression (the return is the target)"
                issues.append(ConfigIssue(("training", "labels", key), message))
        if params.loss is not None and params.loss not in REGRESSION_LOSSES:
            message = f"{params.loss} is a classification loss; regression uses huber or mse"
            issues.append(ConfigIssue(("training", "loss"), message))
        if params.class_weights is not None:
            message = "no effect with output_format regression (there are no classes)"
            issues.append(ConfigIssue(("training", "class_weights"), message))
    else:
        classes = labels.class_names
        if params.loss is not None and params.loss not in CLASSIFICATION_LOSSES:
            message = (
                f"{params.loss} is a regression loss; classification uses cross_entropy or focal"
            )
            issues.append(ConfigIssue(("training", "loss"), message))
        weights = params.class_weights
        if isinstance(weights, list) and len(weights) != len(classes):
            message = f"{len(weights)} weights for {len(classes)} classes ({', '.join(classes)})"
            issues.append(ConfigIssue(("training", "class_weights"), message))
    daily = not base or not tf.is_timeframe(base) or tf.length(base) >= tf.length("1d")
    if labels.source == "context" and not daily:
        message = (
            f"context labels are a daily trend context; the base timeframe is {base} "
            "(use 1d, or source: forward_return)"
        )
        issues.append(ConfigIssue(("training", "labels", "source"), message))
    return issues


def _cost_from_decisions(
    training: TrainingSection, decisions: Any, issues: list[ConfigIssue]
) -> Any:
    """decisions.cost_model.round_trip_cost (a fraction per round trip: in and out) sets the
    trading evaluation's cost per unit of position change: round_trip_cost / 2 in basis
    points. Giving training.evaluation.cost_bps too is an error."""
    evaluation = training.evaluation
    cost = decisions.get("cost_model") if isinstance(decisions, Mapping) else None
    round_trip = cost.get("round_trip_cost") if isinstance(cost, Mapping) else None
    if round_trip is None:
        return evaluation
    where = ("decisions", "cost_model", "round_trip_cost")
    if isinstance(round_trip, bool) or not isinstance(round_trip, int | float) or round_trip < 0:
        issues.append(ConfigIssue(where, f"must be a fraction >= 0, got {round_trip!r}"))
        return evaluation
    derived = float(round_trip) * 1e4 / 2
    if "cost_bps" in evaluation.model_fields_set and evaluation.cost_bps != derived:
        message = (
            "decisions.cost_model.round_trip_cost and training.evaluation.cost_bps both set "
            "the evaluation's cost; keep one"
        )
        issues.append(ConfigIssue(where, message))
        return evaluation
    return evaluation.model_copy(update={"cost_bps": derived})


def apply_overrides(
    cfg: StrategyConfig,
    *,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> StrategyConfig:
    """`cfg` with other symbols/timeframes and hyper-parameters, validated again.

    `overrides` keys are the short names in overrides.OVERRIDE_PATHS (epochs, batch_size, ...) or a
    dotted path into the KTRDR layout (`model.training.lr_scheduler`)."""
    snapshot = overridden_snapshot(cfg.snapshot(), symbols, timeframes, overrides or {})
    return load_strategy(snapshot)
