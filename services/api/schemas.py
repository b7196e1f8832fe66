"""Request and response bodies of the REST API (pydantic v2).

Request models forbid unknown fields, so a typo is a 422 naming the field rather than a silently
ignored option. Response models are built from the read model (`TrainingState`) and the event
log (`StoredEvent`); their field names are the API's contract with clients.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING
from datetime import datetime
from typing import Annotated, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from libs.events.catalog import DeviceClass
from libs.events.readmodels.trainings import Status, TrainingState
from libs.pipeline import names
from services.api import text
from services.api.errors import invalid
from services.api.text import unstorable_at

# A symbol or timeframe name: letters, digits, a few separators; nothing that makes a path.
NAME_PATTERN = names.REQUEST_NAME.pattern
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        where = unstorable_at(data)
        if where is not None:
            raise invalid(where, text.REASON)  # a Problem passes through pydantic as it is
        return data


class SubmitTraining(_Request):
    """POST /trainings. Exactly one of `strategy` (a name in the strategies folder) and
    `strategy_yaml` (the YAML text) -- checked in the route so the error names both fields."""

    strategy: str | None = Field(default=None, max_length=names.STRATEGY.max_length)
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


# Read-model columns the API keeps to itself: log bookkeeping (`last_position` is shown as
# `position`) and the submitter's Idempotency-Key.
INTERNAL_COLUMNS = frozenset({"first_position", "last_position", "idempotency_key"})


def _read_model_columns() -> dict[str, Any]:
    """The `trainings` read model's columns as pydantic fields (type, default), so a column
    added to TrainingState shows in the API without a second list to keep in step."""
    hints = get_type_hints(TrainingState)
    return {
        field.name: (hints[field.name], ... if field.default is MISSING else field.default)
        for field in dataclasses.fields(TrainingState)
        if field.name not in INTERNAL_COLUMNS
    }


class TrainingView(create_model("TrainingColumns", **_read_model_columns())):  # type: ignore[misc]
    """The read model of one training (every TrainingState column but INTERNAL_COLUMNS), as of
    log `position`."""

    status: Status
    position: int
    links: Links

    @classmethod
    def of(cls, state: TrainingState, links: Links) -> TrainingView:
        fields = {name: getattr(state, name) for name in cls.model_fields if hasattr(state, name)}
        fields.update(position=state.last_position, links=links)
        view: TrainingView = cls.model_validate(fields)
        return view


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
    signal: str  # BUY | HOLD | SELL (a regime model: TREND_UP | TREND_DOWN | RANGE | VOLATILE)
    probabilities: dict[str, float]  # per class; empty for a regression model
    predicted_return: float | None = None  # a regression model's prediction (signal: its sign)


# A model reference's parts: a version (`v3`, `1h_v3`, `latest`) or an alias (`champion`).
ModelRefText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$")]


class PredictWithRequest(PredictRequest):
    """POST /models/{strategy}/predict: `version` or `alias`, or neither: the `champion` alias
    when it is set, else `latest` (the answer's `resolved` says which)."""

    version: ModelRefText | None = None
    alias: ModelRefText | None = None
    timeframe: ModelRefText | None = None


class Resolved(BaseModel):
    """Which model version answered, and how the request named it."""

    tenant: str | None
    timeframe: str
    version: int
    name: str  # {timeframe}_v{N}
    via: str  # version | alias | latest | champion (default) | latest (default)
    alias: str | None = None
    note: str = ""


class PredictResponse(BaseModel):
    strategy: str
    version: str
    symbol: str
    predictions: list[Prediction]
    resolved: Resolved | None = None


class SetAlias(_Request):
    """PUT /models/{strategy}/aliases/{alias}: the version it names from now on."""

    version: ModelRefText
    timeframe: ModelRefText | None = None
