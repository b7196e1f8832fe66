"""Strategy configuration: load a KTRDR strategy (v1 `data:` or v2 `training_data:` layout),
validate it completely, and give back one frozen, fully resolved `StrategyConfig`.

Validation happens in two passes: pydantic checks each section's shape (unknown fields, types,
ranges, enums -- all problems at once), then cross-checks that need the whole file (fuzzy
inputs refer to indicators, timeframes are known, the base timeframe is one of them, ...).
Either pass raises one StrategyConfigError listing every problem it found, each with its
location in the document.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from libs.pipeline.config.errors import ConfigIssue, StrategyConfigError, describe
from libs.pipeline.config.layout import RawStrategy, check_names, check_references, resolve_layout
from libs.pipeline.config.overrides import overridden_snapshot
from libs.pipeline.config.sections import FuzzyInputConfig, IndicatorConfig, Section
from libs.pipeline.config.training import ModelConfig, Session, TrainingSection
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
    indicators: list[IndicatorConfig]
    fuzzy_sets: dict[str, FuzzyInputConfig]  # key: feature_id or feature_id.output
    model: ModelConfig
    training: TrainingSection
    other_sections: dict[str, Any] = Field(default_factory=dict)
    unused_sections: list[str] = Field(default_factory=list)

    def indicator(self, feature_id: str) -> IndicatorConfig:
        for indicator in self.indicators:
            if indicator.feature_id == feature_id:
                return indicator
        raise KeyError(feature_id)

    def fuzzy_source(self, key: str) -> tuple[IndicatorConfig, str]:
        """The indicator a fuzzy input reads and the indicator column holding its values."""
        feature_id, _, output = key.partition(".")
        indicator = self.indicator(feature_id)
        if not output or output == indicator.spec.primary:
            return indicator, feature_id
        return indicator, key

    @property
    def warmup_bars(self) -> int:
        """Bars of each timeframe before every indicator has converged and every lag exists."""
        longest = max(i.spec.warmup(i.params) for i in self.indicators)
        return longest + self.model.features.lookback_periods

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
        out["indicators"] = [indicator.to_ktrdr() for indicator in self.indicators]
        out["fuzzy_sets"] = {key: fuzzy.to_ktrdr() for key, fuzzy in self.fuzzy_sets.items()}
        out["model"] = self.model.to_ktrdr()
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
    try:
        raw = RawStrategy.model_validate(body)
    except ValidationError as exc:
        raise StrategyConfigError(describe(exc, RawStrategy, OTHER_SUBSYSTEM_SECTIONS)) from None
    issues: list[ConfigIssue] = []
    symbols, frames, base, history, session = resolve_layout(raw, issues)
    issues += check_names(raw, symbols, frames, base)
    issues += check_references(raw)
    if issues:
        raise StrategyConfigError(issues)
    return StrategyConfig(
        name=raw.name,
        description=raw.description,
        version=raw.version,
        symbols=symbols,
        timeframes=frames,
        base_timeframe=base,
        history_required=history,
        session=session,  # type: ignore[arg-type]
        indicators=raw.indicators,
        fuzzy_sets=raw.fuzzy_sets,
        model=raw.model,
        training=raw.training,
        other_sections=others,
        unused_sections=list(others),
    )


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
