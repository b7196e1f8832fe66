"""Strategy sections about how to train: model.training, training (labels, split), the model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from libs.pipeline.config.errors import SectionIssues
from libs.pipeline.config.sections import ArchitectureConfig, FeaturesConfig, Section

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


class DataSplitConfig(Section):
    train: float = Field(default=0.7, gt=0.0, lt=1.0)
    validation: float = Field(default=0.15, gt=0.0, lt=1.0)
    test: float = Field(default=0.15, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> DataSplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1, got {total:g}")
        return self


class TrainingSection(Section):
    method: Literal["supervised"] = "supervised"
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    data_split: DataSplitConfig = Field(default_factory=DataSplitConfig)


class V1Data(Section):
    """`data:` of a v1 file; the first timeframe is the base."""

    symbols: list[str] = Field(min_length=1)
    timeframes: list[str] = Field(min_length=1)
    history_required: int = Field(default=0, ge=0)


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
