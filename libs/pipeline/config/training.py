"""Strategy sections about how to train: model.training, training (labels, split), the model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from libs.pipeline.config.errors import SectionIssues
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
        if not isinstance(data, Mapping):
            return data
        kind = data.get("type", "none")
        if kind not in _SCHEDULER_FIELDS:
            return data  # the Literal reports it with the valid types
        used = _SCHEDULER_FIELDS[kind]
        unused = [
            key
            for key, value in data.items()
            if key != "type" and key not in used and key in cls.model_fields and value is not None
        ]
        if unused:
            uses = ", ".join(used) or "no other fields"
            reason = f"no effect with type {kind}; {kind} uses: {uses}"
            if len(unused) == 1:
                raise SectionIssues.at(unused[0], reason)
            raise ValueError(f"{', '.join(unused)}: {reason}")
        return {**used, **{key: value for key, value in data.items() if value is not None}}

    def to_ktrdr(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class EarlyStoppingConfig(Section):
    patience: int = Field(default=10, ge=1)
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    min_delta: float = Field(default=0.0, ge=0.0)


class TrainingParams(Section):
    """model.training: the optimisation hyper-parameters."""

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
            and len(value) == 3
            and all(isinstance(w, int | float) and not isinstance(w, bool) and w > 0 for w in value)
        ):
            return [float(w) for w in value]
        raise ValueError(
            f"must be 'balanced', null, or 3 positive numbers [BUY, HOLD, SELL]; got {value!r}"
        )

    def to_ktrdr(self) -> dict[str, Any]:
        out = self.model_dump()
        out["lr_scheduler"] = self.lr_scheduler.to_ktrdr()
        return out


class ModelConfig(Section):
    type: Literal["mlp"] = "mlp"
    architecture: ArchitectureConfig = Field(default_factory=ArchitectureConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    training: TrainingParams = Field(default_factory=TrainingParams)

    def to_ktrdr(self) -> dict[str, Any]:
        features = self.features.model_dump()
        if not self.features.scale_features:
            del features["scaling_method"]
        return {
            "type": self.type,
            "architecture": self.architecture.model_dump(),
            "features": features,
            "training": self.training.to_ktrdr(),
        }


class LabelsConfig(Section):
    source: Literal["zigzag"] = "zigzag"
    zigzag_threshold: float = Field(default=0.05, gt=0.0, lt=1.0)  # a fraction: 0.05 = 5 %
    label_lookahead: int = Field(default=20, ge=1)  # bars; a pivot further ahead -> HOLD


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

    def to_ktrdr(self) -> dict[str, Any]:
        return {**self.model_dump(), "data_split": self.data_split.to_ktrdr()}


class V1Data(Section):
    """`data:` of a v1 file; the first timeframe is the base."""

    symbols: list[str] = Field(min_length=1)
    timeframes: list[str] = Field(min_length=1)
    history_required: int = Field(default=0, ge=0)
    session: Session = "utc"


class V2Symbols(Section):
    mode: Literal["single_symbol", "multi_symbol"]
    names: list[str] = Field(alias="list", min_length=1)


class V2Timeframes(Section):
    mode: Literal["single_timeframe", "multi_timeframe"]
    names: list[str] = Field(alias="list", min_length=1)
    base_timeframe: str | None = None


class V2Data(Section):
    """`training_data:` of a v2 file."""

    symbols: V2Symbols
    timeframes: V2Timeframes
    history_required: int = Field(default=0, ge=0)
    session: Session = "utc"
