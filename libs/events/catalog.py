"""The event catalog (architecture.md §4): every event is a frozen pydantic model with one envelope.

The `type` string is the stable registry key (never a Python import path). Payload fields sit
beside the envelope fields, so the JSON of an event is flat; `payload_of()` splits them for the
`events.payload` column. Bump `schema_version` on an incompatible change and add an upcaster in
`libs/events/upcasting.py`; old events are upcast on read.

Each class also carries its metadata, which the rest of the code derives its lists from:
`TYPE`, `ROUTING_KEY` (the bus topic), `EMITTERS` (which services append or publish it),
`CONTROL` (also routed to the replayable control stream), `STORED` (kept in the log; False for
liveness that only updates a read model) and `summary()`, its one-line human description (the
CLI's `tail`, `watch` and `events` views print it).

`type` and `schema_version` are fields typed as the class's own literal (set up in
`__pydantic_init_subclass__` from `TYPE` and `SCHEMA_VERSION`): they default to the class's
values, and input naming another type or version fails validation instead of being overwritten.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

DeviceClass = Literal["any", "cpu", "cuda", "mps"]
Emitter = Literal["api", "trainer", "projector"]

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
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset()
    CONTROL: ClassVar[bool] = False
    STORED: ClassVar[bool] = True

    event_id: UUID = Field(default_factory=uuid4)
    type: str = ""  # each subclass narrows it to Literal[TYPE] (see the module docstring)
    schema_version: int = 0  # likewise Literal[SCHEMA_VERSION]
    training_id: str | None = None  # the stream; None only for trainer-level events
    tenant: str = "default"
    occurred_at: datetime = Field(default_factory=_now)
    source: str  # "api", "trainer:<id>", "projector"
    attempt: int = 0  # 0 for API events; 1, 2, ... for each trainer attempt
    seq: int = 0  # monotonic per training + attempt + source
    correlation_id: str | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.TYPE:
            return
        fields = cls.model_fields
        # A Literal of a runtime value: fine for pydantic, opaque to a type checker.
        own_type: Any = Literal[cls.TYPE]
        own_version: Any = Literal[cls.SCHEMA_VERSION]
        fields["type"] = FieldInfo(annotation=own_type, default=cls.TYPE)
        fields["schema_version"] = FieldInfo(annotation=own_version, default=cls.SCHEMA_VERSION)
        cls.model_rebuild(force=True)

    @property
    def routing_key(self) -> str:
        return self.ROUTING_KEY

    @property
    def is_terminal(self) -> bool:
        return self.TYPE in TERMINAL_TYPES

    def summary(self) -> str:
        """One line for people: what happened, with the telling numbers."""
        return self.TYPE


REGISTRY: dict[str, type[Event]] = {}


E = TypeVar("E", bound=type[Event])


def register(cls: E) -> E:
    if cls.TYPE in REGISTRY:
        raise ValueError(f"event type {cls.TYPE!r} registered twice")
    if not cls.ROUTING_KEY or not cls.EMITTERS:
        raise ValueError(f"event type {cls.TYPE!r} needs a ROUTING_KEY and its EMITTERS")
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


class ArtifactRef(BaseModel):
    """Where a model's bytes live in the artifact store, and what they are."""

    model_config = ConfigDict(frozen=True)

    key: str  # models/{tenant}/{strategy}/{timeframe}/v{N}.tar
    uri: str  # file:///... or s3://bucket/...
    size: int
    sha256: str


class ModelRef(BaseModel):
    """A trained model. `version` is the registry's (allocated in the artifact store); `path`
    is the trainer's own copy, meaningful on the trainer's host only; `sha256`/`bytes` describe
    that folder (model.pt's hash, the folder's size) and `artifact` the published bytes."""

    model_config = ConfigDict(frozen=True)

    strategy: str
    timeframe: str
    version: int
    path: str
    sha256: str
    bytes: int
    artifact: ArtifactRef | None = None  # None: saved before the artifact store existed
    # training id, tenant, strategy_sha256, symbols, timeframes, start/end date, seed,
    # overrides, data_files {name: sha256}, code_version, device, metrics (libs/pipeline/lineage)
    lineage: dict[str, Any] | None = None


# --- API events --------------------------------------------------------------------------------


@register
class TrainingRequested(Event):
    TYPE: ClassVar[str] = "TrainingRequested"
    ROUTING_KEY: ClassVar[str] = "training.requested"  # + ".<device>": one queue per device
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"api"})

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
        return f"{self.ROUTING_KEY}.{self.device}"

    def summary(self) -> str:
        return (
            f"queued {self.strategy_name} on {', '.join(self.symbols)} "
            f"{', '.join(self.timeframes)} (device {self.device})"
        )


@register
class CancelRequested(Event):
    TYPE: ClassVar[str] = "CancelRequested"
    ROUTING_KEY: ClassVar[str] = "training.cancel_requested"
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"api"})
    CONTROL: ClassVar[bool] = True

    reason: str = "cancelled by user"
    requested_by: str | None = None

    def summary(self) -> str:
        return f"cancel requested: {self.reason}"


# --- trainer events ----------------------------------------------------------------------------


@register
class Started(Event):
    TYPE: ClassVar[str] = "Started"
    SCHEMA_VERSION: ClassVar[int] = 2  # v2: where the attempt resumes (resume_epoch/_batch)
    ROUTING_KEY: ClassVar[str] = "training.started"
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"trainer"})

    trainer_id: str
    host: str
    device: DeviceInfo
    # The attempt continues a checkpoint of an earlier one: in epoch `resume_epoch` (1-based),
    # `resume_batch` of its batches done. None: it starts from the beginning.
    resume_epoch: int | None = None
    resume_batch: int = 0

    def summary(self) -> str:
        resumes = (
            f", resuming at epoch {self.resume_epoch}"
            + (f" batch {self.resume_batch + 1}" if self.resume_batch else "")
            if self.resume_epoch is not None
            else ""
        )
        return (
            f"started on {self.trainer_id} ({self.host}), device {self.device.type} "
            f"{self.device.name}, attempt {self.attempt}{resumes}"
        )


@register
class PhaseStarted(Event):
    TYPE: ClassVar[str] = "PhaseStarted"
    ROUTING_KEY: ClassVar[str] = "training.phase_started"
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"trainer"})

    phase: str
    index: int  # 0-based position in PHASES
    total_phases: int
    message: str = ""

    def summary(self) -> str:
        return f"phase {self.index + 1}/{self.total_phases}: {self.phase}"


@register
class BatchProgress(Event):
    TYPE: ClassVar[str] = "BatchProgress"
    # v1 had loss/accuracy and percent 0..100; v3 lets the running figures be null (unknown
    # yet: before the epoch's first statistics fold); see upcasting
    SCHEMA_VERSION: ClassVar[int] = 3
    ROUTING_KEY: ClassVar[str] = "training.batch_progress"
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"trainer"})

    epoch: int
    total_epochs: int
    batch: int
    total_batches: int
    running_loss: float | None = None  # None: not known yet, never a stand-in 0
    running_accuracy: float | None = None
    samples_per_s: float
    progress: float  # 0..1 over the training phase
    eta_s: float | None = None

    def summary(self) -> str:
        eta = f" eta {self.eta_s:.0f}s" if self.eta_s is not None else ""
        loss = "?" if self.running_loss is None else f"{self.running_loss:.4f}"
        acc = "?" if self.running_accuracy is None else f"{self.running_accuracy:.3f}"
        return (
            f"epoch {self.epoch}/{self.total_epochs} batch {self.batch}/{self.total_batches}: "
            f"loss {loss} acc {acc}{eta}"
        )


@register
class EpochCompleted(Event):
    TYPE: ClassVar[str] = "EpochCompleted"
    ROUTING_KEY: ClassVar[str] = "training.epoch_completed"
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"trainer"})

    epoch: int
    total_epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    duration_s: float
    best_epoch: int

    def summary(self) -> str:
        return (
            f"epoch {self.epoch}/{self.total_epochs}: train loss {self.train_loss:.4f} "
            f"acc {self.train_accuracy:.3f} | val loss {self.val_loss:.4f} "
            f"acc {self.val_accuracy:.3f} (best epoch {self.best_epoch})"
        )


@register
class Completed(Event):
    TYPE: ClassVar[str] = "Completed"
    SCHEMA_VERSION: ClassVar[int] = 2  # v2: model.artifact and model.lineage; see upcasting
    ROUTING_KEY: ClassVar[str] = "training.completed"
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"trainer"})
    CONTROL: ClassVar[bool] = True

    model: ModelRef
    training_metrics: dict[str, Any] = Field(default_factory=dict)
    test_metrics: dict[str, Any] = Field(default_factory=dict)
    duration_s: float

    def summary(self) -> str:
        accuracy = self.test_metrics.get("accuracy")
        acc = f", test accuracy {accuracy:.3f}" if isinstance(accuracy, int | float) else ""
        verdict = self.test_metrics.get("verdict")
        judged = f"; {verdict}" if isinstance(verdict, str) else ""
        model = self.model
        return (
            f"completed in {self.duration_s:.1f}s: model "
            f"{model.strategy}/{model.timeframe}_v{model.version}{acc}{judged}"
        )


@register
class Failed(Event):
    TYPE: ClassVar[str] = "Failed"
    ROUTING_KEY: ClassVar[str] = "training.failed"
    # The projector fails requests the trainers' queues dead-lettered.
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"trainer", "projector"})
    CONTROL: ClassVar[bool] = True

    error_type: str
    message: str
    phase: str | None = None
    retryable: bool = False
    traceback: str | None = None  # an excerpt, never the whole thing

    def summary(self) -> str:
        where = f" in {self.phase}" if self.phase else ""
        return f"failed{where}: {self.error_type}: {self.message}"


@register
class Cancelled(Event):
    TYPE: ClassVar[str] = "Cancelled"
    ROUTING_KEY: ClassVar[str] = "training.cancelled"
    # The API cancels a training no trainer has started (nothing to stop), the trainer one it
    # runs; `ktrdr up`'s recovery (as the projector) a cancel the last run left half-done.
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"trainer", "api", "projector"})
    CONTROL: ClassVar[bool] = True

    phase: str | None = None  # None when cancelled before any phase ran
    epoch: int | None = None
    reason: str = "cancelled by user"

    def summary(self) -> str:
        where = f" during {self.phase}" if self.phase else " before it started"
        return f"cancelled{where}: {self.reason}"


# --- model registry events (API) ------------------------------------------------------------------
# They live on the stream of the training that produced the model concerned, after its
# Completed: the fold accepts them on a completed training (trainings.py) and the models read
# models derive rows from them (readmodels/models.py).


@register
class ModelAliasSet(Event):
    """`alias` (e.g. champion) now names this version of the tenant's strategy + timeframe;
    it moves here from wherever it was."""

    TYPE: ClassVar[str] = "ModelAliasSet"
    ROUTING_KEY: ClassVar[str] = "training.model_alias_set"
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"api"})

    alias: str
    strategy: str
    timeframe: str
    version: int
    previous_version: int | None = None
    requested_by: str | None = None

    def summary(self) -> str:
        moved = f" (was v{self.previous_version})" if self.previous_version is not None else ""
        return f"alias {self.alias} -> {self.strategy}/{self.timeframe}_v{self.version}{moved}"


@register
class ModelAliasRemoved(Event):
    """`alias` no longer names a version (on the stream of the version it named)."""

    TYPE: ClassVar[str] = "ModelAliasRemoved"
    ROUTING_KEY: ClassVar[str] = "training.model_alias_removed"
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"api"})

    alias: str
    strategy: str
    timeframe: str
    version: int
    requested_by: str | None = None

    def summary(self) -> str:
        return f"alias {self.alias} removed from {self.strategy}/{self.timeframe}_v{self.version}"


@register
class ModelDeleted(Event):
    """An admin deleted this model version: its artifact is removed and it is listed no more."""

    TYPE: ClassVar[str] = "ModelDeleted"
    ROUTING_KEY: ClassVar[str] = "training.model_deleted"
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"api"})

    strategy: str
    timeframe: str
    version: int
    reason: str = ""
    requested_by: str | None = None

    def summary(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"model {self.strategy}/{self.timeframe}_v{self.version} deleted{why}"


MODEL_REGISTRY_TYPES = frozenset({ModelAliasSet.TYPE, ModelAliasRemoved.TYPE, ModelDeleted.TYPE})


@register
class TrainerHeartbeat(Event):
    """Trainer liveness; not part of any training stream (training_id is None) and not kept in
    the log: it only updates the `trainers` read model."""

    TYPE: ClassVar[str] = "TrainerHeartbeat"
    ROUTING_KEY: ClassVar[str] = "trainer.heartbeat"
    EMITTERS: ClassVar[frozenset[Emitter]] = frozenset({"trainer"})
    STORED: ClassVar[bool] = False

    trainer_id: str
    host: str
    device: DeviceInfo
    concurrency: int = 1
    running: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        running = ", ".join(self.running) or "nothing"
        return f"trainer {self.trainer_id} on {self.host} ({self.device.type}) running {running}"


# --- derived from the metadata above -------------------------------------------------------------

TERMINAL_TYPES = frozenset({Completed.TYPE, Failed.TYPE, Cancelled.TYPE})
# Types only trainers emit, and only trainer processes ever emit them.
TRAINER_ONLY_TYPES = frozenset(t for t, cls in REGISTRY.items() if {"trainer"} == cls.EMITTERS)
# Routing keys of the events the control stream keeps (cancellations and outcomes).
CONTROL_ROUTING_KEYS = tuple(cls.ROUTING_KEY for cls in REGISTRY.values() if cls.CONTROL)
