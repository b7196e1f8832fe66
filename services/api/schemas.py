"""Request and response bodies of the REST API (pydantic v2).

Request models forbid unknown fields, so a typo is a 422 naming the field rather than a silently
ignored option. Response models are built from the read model (`TrainingState`) and the event
log (`StoredEvent`); their field names are the API's contract with clients.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DeviceClass = Literal["any", "cpu", "cuda", "mps"]
Status = Literal["queued", "running", "cancelling", "completed", "failed", "cancelled"]

# A symbol or timeframe name: letters, digits, a few separators; nothing that makes a path.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitTraining(_Request):
    """POST /trainings. Exactly one of `strategy` (a name in the strategies folder) and
    `strategy_yaml` (the YAML text) -- checked in the route so the error names both fields."""

    strategy: str | None = Field(default=None, max_length=100)
    strategy_yaml: str | None = None
    symbols: list[Name] | None = Field(default=None, min_length=1, max_length=64)
    timeframes: list[Name] | None = Field(default=None, min_length=1, max_length=16)
    start_date: str | None = Field(default=None, max_length=40)
    end_date: str | None = Field(default=None, max_length=40)
    overrides: dict[str, Any] = Field(default_factory=dict, max_length=64)
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    device: DeviceClass = "any"


class CancelTraining(_Request):
    reason: str = Field(default="cancelled by user", max_length=500)


class Links(BaseModel):
    self: str
    events: str
    cancel: str


class SubmitAccepted(BaseModel):
    training_id: str
    status: Status
    links: Links
    # Accepted, but worth knowing: unused strategy sections, dates outside the data, no trainer
    # for the requested device seen lately (the training waits in the queue for one).
    warnings: list[str] = []


class CancelAccepted(BaseModel):
    training_id: str
    status: Status


class TrainingView(BaseModel):
    """The read model of one training, as of log `position`."""

    training_id: str
    tenant: str
    status: Status
    strategy: str | None = None
    symbols: list[str] | None = None
    timeframes: list[str] | None = None
    device_requested: str | None = None
    phase: str | None = None
    phase_index: int | None = None
    epoch: int | None = None
    total_epochs: int | None = None
    batch: int | None = None
    total_batches: int | None = None
    progress: float | None = None
    eta_s: float | None = None
    latest_metrics: dict[str, Any] | None = None
    best_metrics: dict[str, Any] | None = None
    test_metrics: dict[str, Any] | None = None
    attempt: int
    trainer_id: str | None = None
    device: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    cancel_requested: bool = False
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    position: int
    links: Links

    @classmethod
    def of(cls, state: Any, links: Links) -> TrainingView:
        fields = {name: getattr(state, name, None) for name in cls.model_fields}
        fields.update(position=state.last_position, links=links)
        fields["cancel_requested"] = bool(fields["cancel_requested"])
        return cls.model_validate(fields)


class TrainingPage(BaseModel):
    items: list[TrainingView]
    next: str | None = None  # pass as ?cursor= for the next page; null on the last page


class EventView(BaseModel):
    """One stored event: its global `position` (the SSE `id:`) plus the flat event JSON."""

    model_config = ConfigDict(extra="allow")

    position: int
    recorded_at: datetime | None = None
    type: str


class EventPage(BaseModel):
    events: list[dict[str, Any]]
    next: int | None = None  # pass as ?after= for the next page; null when caught up


class StrategySummary(BaseModel):
    name: str
    description: str | None = None
    symbols: list[str] = []
    timeframes: list[str] = []
    error: str | None = None  # a file in the folder that does not load


class StrategyList(BaseModel):
    items: list[StrategySummary]


class StrategyDetail(BaseModel):
    name: str
    description: str | None = None
    symbols: list[str]
    timeframes: list[str]
    unused_sections: list[str]
    config: dict[str, Any]  # the resolved snapshot (KTRDR format)


class ValidateStrategy(_Request):
    strategy_yaml: str


class ValidationResult(BaseModel):
    ok: bool
    name: str
    warnings: list[str]
    config: dict[str, Any]


class PredictRequest(_Request):
    symbol: Name
    bars: int = Field(default=10, ge=1)


class Prediction(BaseModel):
    timestamp: datetime
    signal: str  # BUY | HOLD | SELL
    probabilities: dict[str, float]


class PredictResponse(BaseModel):
    strategy: str
    version: str
    symbol: str
    predictions: list[Prediction]
