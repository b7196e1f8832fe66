"""Strategy sections about how to train: model.training, training (labels, split), the model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from libs.pipeline.config.errors import ConfigIssue, SectionIssues, fields_without_effect
from libs.pipeline.config.sections import ArchitectureConfig, FeaturesConfig, Section
from libs.pipeline.dates import parse_bound

# How daily and weekly bars are cut from finer ones (libs.pipeline.data.sessions).
Session = Literal["utc", "fx", "exchange"]

# The learning-rate schedulers' defaults: the one place they are written (the train loop's
# SchedulerParams takes its defaults from here too).
PLATEAU_FACTOR = 0.5
PLATEAU_PATIENCE = 10
STEP_SIZE = 30
STEP_GAMMA = 0.1
EXPONENTIAL_GAMMA = 0.95

# Which scheduler fields each scheduler type uses, with their defaults.
_SCHEDULER_FIELDS: dict[str, dict[str, float]] = {
    "reduce_on_plateau": {"factor": PLATEAU_FACTOR, "patience": PLATEAU_PATIENCE},
    "step": {"step_size": STEP_SIZE, "gamma": STEP_GAMMA},
    "exponential": {"gamma": EXPONENTIAL_GAMMA},
    "none": {},
}


class LrSchedulerConfig(Section):
    """Fields a type does not use are None (and an error when given)."""

    type: Literal["reduce_on_plateau", "step", "exponential", "none"] = "none"
    factor: float | None = Field(default=None, gt=0.0, lt=1.0)
    patience: int | None = Field(default=None, ge=0)
    step_size: int | None = Field(default=None, ge=1)
    gamma: float | None = Field(default=None, gt=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _fields_of_type(cls, data: Any) -> Any:
        # KTRDR v3 files write `lr_scheduler: true`: reduce_on_plateau with its defaults
        # (false: none).
        if data is True or data is False:
            data = {"type": "reduce_on_plateau" if data else "none"}
        if not isinstance(data, Mapping):
            return data
        kind = data.get("type", "none")
        if kind not in _SCHEDULER_FIELDS:
            return data  # the Literal reports it with the valid types
        used = _SCHEDULER_FIELDS[kind]
        if issues := fields_without_effect(data, cls.model_fields, "type", kind, list(used)):
            raise SectionIssues(issues)
        return {**used, **{key: value for key, value in data.items() if value is not None}}

    def to_ktrdr(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class EarlyStoppingConfig(Section):
    patience: int = Field(default=10, ge=1)
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    min_delta: float = Field(default=0.0, ge=0.0)


Loss = Literal["cross_entropy", "focal", "huber", "mse"]
CLASSIFICATION_LOSSES: tuple[str, ...] = ("cross_entropy", "focal")
REGRESSION_LOSSES: tuple[str, ...] = ("huber", "mse")


class TrainingParams(Section):
    """The optimisation hyper-parameters: `training.*` in v3, `model.training` in v1/v2."""

    learning_rate: float = Field(default=0.001, gt=0.0, le=10.0)
    batch_size: int = Field(default=32, ge=1)
    epochs: int = Field(default=50, ge=1)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    weight_decay: float = Field(default=0.0, ge=0.0)
    lr_scheduler: LrSchedulerConfig = Field(default_factory=LrSchedulerConfig)
    early_stopping: EarlyStoppingConfig | None = None
    gradient_clip: float | None = Field(default=None, gt=0.0)
    # "balanced" = inverse class frequency on the train split; or one weight per class
    # (BUY, HOLD, SELL); None = unweighted loss.
    class_weights: Literal["balanced"] | list[float] | None = None
    # None: cross_entropy for classification, mse for regression. focal_gamma only with
    # focal (default 2), huber_delta only with huber (default 1).
    loss: Loss | None = None
    focal_gamma: float | None = Field(default=None, ge=0.0)
    huber_delta: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _loss_fields(self) -> TrainingParams:
        for name, kind in (("focal_gamma", "focal"), ("huber_delta", "huber")):
            if getattr(self, name) is not None and self.loss != kind:
                raise SectionIssues.at(name, f"no effect unless loss is {kind}")
        return self

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _enabled_flag(cls, value: Any) -> Any:
        # KTRDR files may write `early_stopping: {enabled: false, ...}`; false means None.
        if isinstance(value, Mapping) and "enabled" in value:
            enabled = value["enabled"]
            if not isinstance(enabled, bool):
                raise SectionIssues.at("enabled", f"must be true or false, got {enabled!r}")
            return {k: v for k, v in value.items() if k != "enabled"} if enabled else None
        return value

    @field_validator("class_weights", mode="plain")
    @classmethod
    def _class_weights(cls, value: Any) -> Any:
        if value is None or value == "balanced":
            return value
        if (
            isinstance(value, list | tuple)
            and len(value) >= 2
            and all(isinstance(w, int | float) and not isinstance(w, bool) and w > 0 for w in value)
        ):
            return [float(w) for w in value]
        raise ValueError(
            f"must be 'balanced', null, or one positive number per class "
            f"([BUY, HOLD, SELL]); got {value!r}"
        )

    def to_ktrdr(self) -> dict[str, Any]:
        out = self.model_dump(exclude_none=True)
        out["early_stopping"] = out.get("early_stopping")
        out["gradient_clip"] = self.gradient_clip
        out["class_weights"] = self.class_weights
        out["lr_scheduler"] = self.lr_scheduler.to_ktrdr()
        return out


SEQUENCE_MODELS: tuple[str, ...] = ("lstm", "gru")
_MLP_FIELDS = ("hidden_layers", "activation")
_SEQUENCE_FIELDS = ("sequence_length", "hidden_size", "num_layers")
SEQUENCE_DEFAULTS = {"sequence_length": 20, "hidden_size": 64, "num_layers": 1}


class ModelConfig(Section):
    type: Literal["mlp", "lstm", "gru"] = "mlp"
    architecture: ArchitectureConfig = Field(default_factory=ArchitectureConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    training: TrainingParams = Field(default_factory=TrainingParams)

    @model_validator(mode="before")
    @classmethod
    def _architecture_beside_type(cls, data: Any) -> Any:
        """KTRDR v3 files may write the architecture's fields beside `type`
        (`model: {type: mlp, hidden_layers: [32, 16]}`): the same as under architecture."""
        if not isinstance(data, Mapping):
            return data
        fields = ArchitectureConfig.model_fields
        beside = {k: v for k, v in data.items() if k in fields}
        if not beside:
            return data
        arch = data.get("architecture") or {}
        if not isinstance(arch, Mapping):
            return data  # reported by the architecture's own validation
        both = sorted(set(beside) & set(arch))
        if both:
            raise ValueError(
                "; ".join(f"model.{k} and model.architecture.{k} both set; keep one" for k in both)
            )
        rest = {k: v for k, v in data.items() if k not in fields}
        return {**rest, "architecture": {**arch, **beside}}

    @model_validator(mode="after")
    def _fields_of_type(self) -> ModelConfig:
        given = self.architecture.model_fields_set
        sequence = self.type in SEQUENCE_MODELS
        wrong = [f for f in (_MLP_FIELDS if sequence else _SEQUENCE_FIELDS) if f in given]
        if wrong:
            uses = (
                "sequence_length, hidden_size, num_layers, dropout"
                if sequence
                else ("hidden_layers, activation, dropout")
            )
            raise ValueError(
                f"model.architecture.{', '.join(wrong)}: no effect with type {self.type}; "
                f"{self.type} uses {uses}"
            )
        if sequence:
            filled = {
                k: v if getattr(self.architecture, k) is None else getattr(self.architecture, k)
                for k, v in SEQUENCE_DEFAULTS.items()
            }
            arch = self.architecture.model_copy(update=filled)
            object.__setattr__(self, "architecture", arch)
        return self

    def to_ktrdr(self) -> dict[str, Any]:
        features = self.features.model_dump()
        if not self.features.scale_features:
            del features["scaling_method"]
        arch = self.architecture.model_dump()
        for key in _SEQUENCE_FIELDS if self.type not in SEQUENCE_MODELS else _MLP_FIELDS:
            del arch[key]
        return {
            "type": self.type,
            "architecture": arch,
            "features": features,
            "training": self.training.to_ktrdr(),
        }


# Which label fields each source uses, with their defaults (None: optional, off).
LABEL_FIELDS: dict[str, dict[str, Any]] = {
    "zigzag": {"zigzag_threshold": 0.05, "label_lookahead": 20},
    # Thresholds: only for classes (the loader fills THRESHOLDS in when none are given).
    "forward_return": {"horizon": 20, "bullish_threshold": None, "bearish_threshold": None},
    "context": {"horizon": 5, "bullish_threshold": None, "bearish_threshold": None},
    "triple_barrier": {
        "pt_multiplier": 2.0,
        "sl_multiplier": 2.0,
        "vol_span": 20,
        "vol_method": "ewm_std",
        "max_holding_period": 24,
        "cusum_threshold": None,
        "cusum_multiplier": None,
        "compute_weights": False,
    },
    "regime": {
        "macro_atr_mult": 3.0,
        "micro_atr_mult": 1.0,
        "atr_period": 14,
        "vol_crisis_threshold": 2.0,
        "vol_lookback": 120,
        "progression_tolerance": 0.5,
    },
}
# Default (bullish, bearish) thresholds of thresholded forward returns, per source.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "forward_return": (0.005, -0.005),
    "context": (0.01, -0.01),
}
# Fields KTRDR files write that nothing consumes: the field to use instead.
LABEL_RENAMED: dict[str, str] = {
    "profit_target_atr": "pt_multiplier (with vol_method: atr)",
    "stop_loss_atr": "sl_multiplier (with vol_method: atr)",
    "max_holding_bars": "max_holding_period",
}
# Classes per label source; regression (forward_return only) has none.
REGIME_CLASSES: tuple[str, ...] = ("TREND_UP", "TREND_DOWN", "RANGE", "VOLATILE")
SIGNAL_CLASSES: tuple[str, ...] = ("BUY", "HOLD", "SELL")


class LabelsConfig(Section):
    """The training target. Fields another source uses are None (and an error when given)."""

    source: Literal["zigzag", "forward_return", "context", "triple_barrier", "regime"] = "zigzag"
    zigzag_threshold: float | None = Field(default=None, gt=0.0, lt=1.0)  # 0.05 = 5 %
    label_lookahead: int | None = Field(default=None, ge=1)  # bars; a pivot further -> HOLD
    horizon: int | None = Field(default=None, ge=1)  # bars ahead of the forward return
    bullish_threshold: float | None = Field(default=None, allow_inf_nan=False)
    bearish_threshold: float | None = Field(default=None, allow_inf_nan=False)
    pt_multiplier: float | None = Field(default=None, gt=0.0)
    sl_multiplier: float | None = Field(default=None, gt=0.0)
    vol_span: int | None = Field(default=None, ge=2)
    vol_method: Literal["ewm_std", "atr"] | None = None
    max_holding_period: int | None = Field(default=None, ge=1)
    cusum_threshold: float | None = Field(default=None, gt=0.0)
    cusum_multiplier: float | None = Field(default=None, gt=0.0)
    compute_weights: bool | None = None
    macro_atr_mult: float | None = Field(default=None, gt=0.0)
    micro_atr_mult: float | None = Field(default=None, gt=0.0)
    atr_period: int | None = Field(default=None, ge=1)
    vol_crisis_threshold: float | None = Field(default=None, gt=0.0)
    vol_lookback: int | None = Field(default=None, ge=2)
    progression_tolerance: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _fields_of_source(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        source = data.get("source", "zigzag")
        renamed = [k for k in data if k in LABEL_RENAMED]
        if renamed:
            raise SectionIssues(
                [
                    ConfigIssue((k,), f"not a label field; use {LABEL_RENAMED[k]}", "unknown_field")
                    for k in renamed
                ]
            )
        if source not in LABEL_FIELDS:
            return data  # the Literal reports it with the valid sources
        used = LABEL_FIELDS[source]
        if issues := fields_without_effect(data, cls.model_fields, "source", source, list(used)):
            raise SectionIssues(issues)
        return {**used, **{key: value for key, value in data.items() if value is not None}}

    @model_validator(mode="after")
    def _consistent(self) -> LabelsConfig:
        bull, bear = self.bullish_threshold, self.bearish_threshold
        if bull is not None and bear is not None and not bear < bull:
            raise ValueError(
                f"bearish_threshold ({bear:g}) must be below bullish_threshold ({bull:g})"
            )
        if self.cusum_threshold is not None and self.cusum_multiplier is not None:
            raise ValueError(
                "cusum_threshold (a fixed return) and cusum_multiplier (times the volatility "
                "estimate) both set; give one"
            )
        if self.source == "regime":
            assert self.micro_atr_mult is not None and self.macro_atr_mult is not None
            if not self.micro_atr_mult < self.macro_atr_mult:
                raise ValueError(
                    f"micro_atr_mult ({self.micro_atr_mult:g}) must be below macro_atr_mult "
                    f"({self.macro_atr_mult:g}): micro swings subdivide the macro legs"
                )
        return self

    @property
    def horizon_bars(self) -> int:
        """How far ahead a label reads prices, in base bars (the default purge and bootstrap
        block): zigzag's lookahead, the forward return's horizon, the triple barrier's
        holding period; regime: its ATR period (its legs are purged by their own ends)."""
        value = {
            "zigzag": self.label_lookahead,
            "forward_return": self.horizon,
            "context": self.horizon,
            "triple_barrier": self.max_holding_period,
            "regime": self.atr_period,
        }[self.source]
        assert value is not None
        return int(value)

    @property
    def class_names(self) -> tuple[str, ...]:
        return REGIME_CLASSES if self.source == "regime" else SIGNAL_CLASSES

    def to_ktrdr(self) -> dict[str, Any]:
        out = self.model_dump(exclude_none=True)
        for key, default in LABEL_FIELDS[self.source].items():
            if default is None and key not in out:
                continue
            out.setdefault(key, default)
        return out


class WalkForwardConfig(Section):
    """k sequential folds over the whole timeline (scikit-learn's TimeSeriesSplit shape): fold
    j tests on the j-th of the last k equal blocks and fits on what precedes it (all of it:
    expanding; a window as long as the first fold's: rolling)."""

    folds: int = Field(default=5, ge=2, le=50)
    window: Literal["expanding", "rolling"] = "expanding"


class DataSplitConfig(Section):
    """One set of cut dates for every symbol: from fractions of the common timeline (the
    distinct bar times of all symbols) or from explicit dates, never per symbol."""

    train: float = Field(default=0.7, gt=0.0, lt=1.0)
    validation: float = Field(default=0.15, gt=0.0, lt=1.0)
    test: float = Field(default=0.15, gt=0.0, lt=1.0)
    # Explicit cut dates (UTC, inclusive starts) instead of the fractions: train before
    # validation_start, validation before test_start, test from test_start on.
    validation_start: str | None = None
    test_start: str | None = None
    # Rows dropped before each cut besides those whose label reads prices after it (always
    # dropped): at least this many base bars; None = training.labels.label_lookahead.
    purge_bars: int | None = Field(default=None, ge=0)
    # Rows dropped right after each cut (the first bars of validation and test), whose
    # features share bars with the rows before the cut. None = 0, except triple_barrier:
    # its vol_span (the volatility estimate straddles the cut).
    embargo_bars: int | None = Field(default=None, ge=0)
    # Guards, checked before training: each split keeps at least min_rows rows, every class
    # appears in training, the test window spans at least min_test_days days. `warn` turns
    # the errors into warnings (the model is still trained and saved).
    min_rows: int = Field(default=30, ge=1)
    min_test_days: float = Field(default=5.0, ge=0.0)
    guards: Literal["error", "warn"] = "error"
    walk_forward: WalkForwardConfig | None = None

    @model_validator(mode="after")
    def _sums_to_one(self) -> DataSplitConfig:
        dates = (self.validation_start, self.test_start)
        if any(d is not None for d in dates):
            if None in dates:
                raise ValueError("validation_start and test_start go together; give both")
            fractions = {"train", "validation", "test"} & self.model_fields_set
            if fractions:
                raise ValueError(
                    f"{', '.join(sorted(fractions))}: no effect with explicit cut dates; "
                    "give the fractions or validation_start/test_start, not both"
                )
            try:
                starts = [parse_bound(d, end=False) for d in dates]
            except ValueError:
                raise ValueError(
                    f"validation_start/test_start must be ISO dates, got {dates}"
                ) from None
            if not starts[0] < starts[1]:  # type: ignore[operator]
                raise ValueError(f"validation_start must be before test_start, got {dates}")
            return self
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1, got {total:g}")
        return self

    @property
    def by_dates(self) -> bool:
        return self.test_start is not None

    def to_ktrdr(self) -> dict[str, Any]:
        out = self.model_dump()
        for key in ("train", "validation", "test") if self.by_dates else ():
            del out[key]
        return out


class EvaluationConfig(Section):
    """How the test split (and each walk-forward fold) is judged."""

    # Cost of one unit of position change (flat -> long = 1, long -> short = 2), in basis
    # points of the traded value.
    cost_bps: float = Field(default=1.0, ge=0.0)
    # The momentum baseline: BUY when close > close `momentum_bars` bars earlier, else SELL.
    momentum_bars: int = Field(default=20, ge=1)
    bootstrap_resamples: int = Field(default=1000, ge=100, le=100_000)
    # Block length of the moving-block bootstrap, in bars; None = label_lookahead (labels are
    # correlated over a leg), at most a fifth of the rows.
    block_bars: int | None = Field(default=None, ge=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)


class TrainingSection(Section):
    method: Literal["supervised"] = "supervised"
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    data_split: DataSplitConfig = Field(default_factory=DataSplitConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    # v3 writes the hyper-parameters here (training.epochs, ...); v1/v2 under model.training.
    # Held apart until the strategy merges the two places (both set -> an error naming both).
    hyper: TrainingParams = Field(default_factory=TrainingParams)

    @model_validator(mode="before")
    @classmethod
    def _hyper_parameters(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "hyper" in data:
            return data
        hyper = {k: v for k, v in data.items() if k in TrainingParams.model_fields}
        rest = {k: v for k, v in data.items() if k not in TrainingParams.model_fields}
        return {**rest, "hyper": hyper}

    def to_ktrdr(self) -> dict[str, Any]:
        out = self.model_dump(exclude={"hyper"})
        return {**out, "labels": self.labels.to_ktrdr(), "data_split": self.data_split.to_ktrdr()}


class V1Data(Section):
    """`data:` of a v1 file; the first timeframe is the base."""

    symbols: list[str] = Field(min_length=1)
    timeframes: list[str] = Field(min_length=1)
    history_required: int = Field(default=0, ge=0)
    session: Session = "utc"


class V2Symbols(Section):
    """v2 `{mode: single_symbol|multi_symbol, list}`; v3 `{mode: single, symbol}` or
    `{mode: multi_symbol, list}` (`symbols` an alias of `list`)."""

    mode: Literal["single_symbol", "multi_symbol", "single"]
    names: list[str] = Field(alias="list", min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _v3(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "symbol" in data:
            if data.get("mode") != "single":
                raise SectionIssues.at("symbol", "goes with mode: single; use list otherwise")
            if not isinstance(data["symbol"], str):
                raise SectionIssues.at("symbol", f"must be one symbol, got {data['symbol']!r}")
            data["list"] = [data.pop("symbol")]
        if "symbols" in data:
            if "list" in data:
                raise SectionIssues.at("symbols", "symbols and list both set; keep one")
            data["list"] = data.pop("symbols")
        return data


class V2Timeframes(Section):
    """v2 `{mode: single_timeframe|multi_timeframe, list, base_timeframe}`; v3 also
    `{mode: single, timeframe}` or a one-element list."""

    mode: Literal["single_timeframe", "multi_timeframe", "single"]
    names: list[str] = Field(alias="list", min_length=1)
    base_timeframe: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _v3(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            return {"mode": "single" if len(data) == 1 else "multi_timeframe", "list": data}
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "timeframe" in data:
            if data.get("mode") != "single":
                raise SectionIssues.at("timeframe", "goes with mode: single; use list otherwise")
            data["list"] = [data.pop("timeframe")]
        return data


class V2Data(Section):
    """`training_data:` of a v2 or v3 file; v3 adds the default date range."""

    symbols: V2Symbols
    timeframes: V2Timeframes
    history_required: int = Field(default=0, ge=0)
    session: Session = "utc"
    start_date: str | None = None
    end_date: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _date_range(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "date_range" not in data:
            return data
        given = data["date_range"]
        if not isinstance(given, Mapping) or set(given) - {"start", "end"}:
            raise SectionIssues.at("date_range", "must be {start, end} (ISO dates)")
        both = [k for k in ("start_date", "end_date") if k in data]
        if both:
            raise SectionIssues.at(
                "date_range", f"date_range and {', '.join(both)} both set; give one form"
            )
        rest = {k: v for k, v in data.items() if k != "date_range"}
        return {**rest, "start_date": given.get("start"), "end_date": given.get("end")}

    @field_validator("start_date", "end_date", mode="before")
    @classmethod
    def _iso(cls, value: Any) -> Any:
        if value is None:
            return None
        text = value.isoformat() if hasattr(value, "isoformat") else value
        if not isinstance(text, str):
            raise ValueError(f"must be an ISO date, got {value!r}")
        try:
            parse_bound(text, end=False)
        except ValueError:
            raise ValueError(f"must be an ISO date, got {value!r}") from None
        return text
