"""The event catalog (DESIGN §3): every event is a frozen pydantic model with one envelope.

The `type` string is the stable registry key (never a Python import path). Payload fields sit
beside the envelope fields, so the JSON of an event is flat; `payload_of()` splits them for the
`events.payload` column. Bump `schema_version` on an incompatible change and add an upcaster in
`libs/events/upcasting.py`; old events are upcast on read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

DeviceClass = Literal["any", "cpu", "cuda", "mps"]

ENVELOPE_FIELDS = frozenset(
    {
        "event_id",
        "type",
        "schema_version",
        "training_id",
        "tenant",
        "occurred_at",
        "source",
        "attempt",
        "seq",
        "correlation_id",
    }
)


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """The envelope shared by every event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1
    ROUTING_KEY: ClassVar[str] = ""

    event_id: UUID = Field(default_factory=uuid4)
    type: str = ""
    schema_version: int = 0
    training_id: str | None = None  # the stream; None only for trainer-level events
    tenant: str = "default"
    occurred_at: datetime = Field(default_factory=_now)
    source: str  # "api", "trainer:<id>", "projector"
    attempt: int = 0  # 0 for API events; 1, 2, ... for each trainer attempt
    seq: int = 0  # monotonic per training + attempt + source
    correlation_id: str | None = None

    def model_post_init(self, __context: Any) -> None:
        # type and schema_version always mirror the class, whatever the caller passed.
        object.__setattr__(self, "type", self.TYPE)
        object.__setattr__(self, "schema_version", self.SCHEMA_VERSION)

    @property
    def routing_key(self) -> str:
        return self.ROUTING_KEY

    @property
    def is_terminal(self) -> bool:
        return self.TYPE in TERMINAL_TYPES


REGISTRY: dict[str, type[Event]] = {}


def register(cls: type[Event]) -> type[Event]:
    if cls.TYPE in REGISTRY:
        raise ValueError(f"event type {cls.TYPE!r} registered twice")
    REGISTRY[cls.TYPE] = cls
    return cls


def payload_of(event: Event) -> dict[str, Any]:
    """The non-envelope fields, JSON-ready (for the events.payload column)."""
    return event.model_dump(mode="json", exclude=set(ENVELOPE_FIELDS))


# --- payload parts -----------------------------------------------------------------------------


class DeviceInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    type: str  # cpu | cuda | mps
    name: str


class ModelRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    strategy: str
    timeframe: str
    version: int
    path: str
    sha256: str
    bytes: int


# --- API events --------------------------------------------------------------------------------


@register
class TrainingRequested(Event):
    TYPE: ClassVar[str] = "TrainingRequested"

    strategy_name: str
    strategy: dict[str, Any]  # the resolved strategy config snapshot (KTRDR format)
    symbols: list[str]
    timeframes: list[str]
    start_date: str | None = None
    end_date: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    seed: int = 42
    device: DeviceClass = "any"
    requested_by: str | None = None
    idempotency_key: str | None = None

    @property
    def routing_key(self) -> str:
        return f"training.requested.{self.device}"


@register
class CancelRequested(Event):
    TYPE: ClassVar[str] = "CancelRequested"
    ROUTING_KEY: ClassVar[str] = "training.cancel_requested"

    reason: str = "cancelled by user"
    requested_by: str | None = None


# --- trainer events ----------------------------------------------------------------------------


@register
class Started(Event):
    TYPE: ClassVar[str] = "Started"
    ROUTING_KEY: ClassVar[str] = "training.started"

    trainer_id: str
    host: str
    device: DeviceInfo


@register
class PhaseStarted(Event):
    TYPE: ClassVar[str] = "PhaseStarted"
    ROUTING_KEY: ClassVar[str] = "training.phase_started"

    phase: str
    index: int  # 0-based position in PHASES
    total_phases: int
    message: str = ""


@register
class BatchProgress(Event):
    TYPE: ClassVar[str] = "BatchProgress"
    SCHEMA_VERSION: ClassVar[int] = 2  # v1 had loss/accuracy and percent 0..100; see upcasting
    ROUTING_KEY: ClassVar[str] = "training.batch_progress"

    epoch: int
    total_epochs: int
    batch: int
    total_batches: int
    running_loss: float
    running_accuracy: float
    samples_per_s: float
    progress: float  # 0..1 over the training phase
    eta_s: float | None = None


@register
class EpochCompleted(Event):
    TYPE: ClassVar[str] = "EpochCompleted"
    ROUTING_KEY: ClassVar[str] = "training.epoch_completed"

    epoch: int
    total_epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    duration_s: float
    best_epoch: int


@register
class Completed(Event):
    TYPE: ClassVar[str] = "Completed"
    ROUTING_KEY: ClassVar[str] = "training.completed"

    model: ModelRef
    training_metrics: dict[str, Any] = Field(default_factory=dict)
    test_metrics: dict[str, Any] = Field(default_factory=dict)
    duration_s: float


@register
class Failed(Event):
    TYPE: ClassVar[str] = "Failed"
    ROUTING_KEY: ClassVar[str] = "training.failed"

    error_type: str
    message: str
    phase: str | None = None
    retryable: bool = False
    traceback: str | None = None  # an excerpt, never the whole thing


@register
class Cancelled(Event):
    TYPE: ClassVar[str] = "Cancelled"
    ROUTING_KEY: ClassVar[str] = "training.cancelled"

    phase: str | None = None  # None when cancelled before any phase ran
    epoch: int | None = None
    reason: str = "cancelled by user"


@register
class TrainerHeartbeat(Event):
    """Trainer liveness; not part of any training stream (training_id is None)."""

    TYPE: ClassVar[str] = "TrainerHeartbeat"
    ROUTING_KEY: ClassVar[str] = "trainer.heartbeat"

    trainer_id: str
    host: str
    device: DeviceInfo
    concurrency: int = 1
    running: list[str] = Field(default_factory=list)


TERMINAL_TYPES = frozenset({Completed.TYPE, Failed.TYPE, Cancelled.TYPE})
TRAINER_TYPES = frozenset(
    {
        Started.TYPE,
        PhaseStarted.TYPE,
        BatchProgress.TYPE,
        EpochCompleted.TYPE,
        Completed.TYPE,
        Failed.TYPE,
        Cancelled.TYPE,
    }
)
