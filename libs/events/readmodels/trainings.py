"""The `trainings` read model: one row per training, its current state (architecture.md §4, §6).

It is the stream fold: every stored event of a training goes through `apply()`, which also
decides whether the event is ACCEPTED — the other read models derive rows only from accepted
events (see unit.py). `apply()` is pure: the store runs it inside its append transaction,
rebuild and `state_as_of` refold the log with the very same code.

Rules, in the order they are applied to an event for training T in state S:
1. A trainer event (source "trainer:<id>") from an attempt older than S.attempt is a zombie's
   and is ignored. One from a newer attempt starts that attempt: progress (phase, epoch, batch,
   progress, eta, metrics) is reset and attempt/trainer/started_at set, even before its Started
   arrives; a Started that resumes a checkpoint keeps the metrics and sets the position it
   resumes at. API and projector events carry no attempt and always apply.
2. Terminal states (completed, failed, cancelled) are sticky: afterwards only a late
   TrainingRequested may fill in request metadata (strategy, symbols, ...); nothing moves the
   status, progress or result. The model registry's events (alias set/removed, model deleted)
   are accepted on a completed training only, and change nothing in its row.
3. Progress never moves backwards within an attempt: a PhaseStarted with a lower index, a
   BatchProgress for an earlier (epoch, batch) or an EpochCompleted for an earlier epoch leave
   the position fields alone (out-of-order delivery). Best metrics are the lowest val_loss.
4. CancelRequested on queued/running -> cancelling. A Failed while a cancel was requested is
   shown as cancelled (the error is still recorded): a cancelled training never shows failed.
5. last_position (and updated_at) advance with every event, whether it changed anything or not.

Only an accepted event adds rows to the derived read models (so a stale attempt's epochs or a
second Completed add nothing). `TrainingState` mirrors a `trainings` row column for column; its
JSON fields hold plain dicts/lists: treat them as read-only (folds always build new ones).

A new event the trainings fold reacts to: its handler below and one line in `_HANDLERS`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import catalog as ev
from libs.events.columns import ID, MAX_POSITION, TENANT, Json, UTCDateTime, metadata
from libs.events.readmodels.unit import ReadModel

Status = Literal["queued", "running", "cancelling", "completed", "failed", "cancelled"]
QUEUED: Final = "queued"
RUNNING: Final = "running"
CANCELLING: Final = "cancelling"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
STATUSES: tuple[Status, ...] = get_args(Status)
TERMINAL_STATUSES: frozenset[Status] = frozenset({COMPLETED, FAILED, CANCELLED})
ACTIVE_STATUSES: frozenset[Status] = frozenset({QUEUED, RUNNING, CANCELLING})

trainings = sa.Table(
    "trainings",
    metadata,
    sa.Column("training_id", ID, primary_key=True),
    sa.Column("tenant", TENANT, nullable=False),
    sa.Column("strategy", sa.String(200), nullable=True),
    sa.Column("symbols", Json, nullable=True),
    sa.Column("timeframes", Json, nullable=True),
    sa.Column("device_requested", sa.String(16), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("phase", sa.String(32), nullable=True),
    sa.Column("phase_index", sa.Integer(), nullable=True),
    sa.Column("epoch", sa.Integer(), nullable=True),
    sa.Column("total_epochs", sa.Integer(), nullable=True),
    sa.Column("batch", sa.Integer(), nullable=True),
    sa.Column("total_batches", sa.Integer(), nullable=True),
    sa.Column("progress", sa.Float(), nullable=True),
    sa.Column("eta_s", sa.Float(), nullable=True),
    sa.Column("latest_metrics", Json, nullable=True),
    sa.Column("best_metrics", Json, nullable=True),
    sa.Column("test_metrics", Json, nullable=True),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("trainer_id", sa.String(128), nullable=True),
    sa.Column("device", Json, nullable=True),
    sa.Column("model", Json, nullable=True),
    sa.Column("error", Json, nullable=True),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False),
    sa.Column("requested_at", UTCDateTime(), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # Position of the stream's first event: a stable, unique creation order for list cursors.
    sa.Column("first_position", sa.BigInteger(), nullable=False),
    sa.Column("last_position", sa.BigInteger(), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Index(None, "tenant", "first_position"),
    sa.Index(None, "status", "first_position"),
    sa.Index(None, "first_position", unique=True),
)


@dataclass(frozen=True)  # no slots: evolve() copies __dict__, far cheaper than __init__
class TrainingState:
    training_id: str
    tenant: str
    status: Status
    attempt: int
    cancel_requested: bool
    updated_at: datetime
    first_position: int
    last_position: int
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
    trainer_id: str | None = None
    device: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    idempotency_key: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in TRAINING_FIELDS}

    def evolve(self, changes: dict[str, Any]) -> TrainingState:
        """A copy with `changes` applied: dataclasses.replace without re-running __init__
        (folds call this once per event; replace() would cost as much as the rest of a
        rebuild)."""
        if not changes.keys() <= _TRAINING_FIELD_SET:
            raise AttributeError(
                f"not TrainingState fields: {sorted(changes.keys() - _TRAINING_FIELD_SET)}"
            )
        new = object.__new__(TrainingState)
        values = new.__dict__
        values.update(self.__dict__)
        values.update(changes)
        return new

    @classmethod
    def from_row(cls, row: Any) -> TrainingState:
        mapping = row._mapping if hasattr(row, "_mapping") else row
        return cls(**{name: mapping[name] for name in TRAINING_FIELDS})


TRAINING_FIELDS = tuple(f.name for f in dataclasses.fields(TrainingState))
_TRAINING_FIELD_SET = frozenset(TRAINING_FIELDS)


# --- the fold -----------------------------------------------------------------------------------

TRAINER_SOURCE_PREFIX = "trainer:"
_REQUESTED = ev.TrainingRequested.TYPE
Changes = dict[str, Any]  # field name -> new value, collected while an event is applied

# What a new attempt clears: everything that describes one run's progress and outcome.
_ATTEMPT_RESET: dict[str, Any] = {
    "phase": None,
    "phase_index": None,
    "epoch": None,
    "total_epochs": None,
    "batch": None,
    "total_batches": None,
    "progress": None,
    "eta_s": None,
    "latest_metrics": None,
    "best_metrics": None,
    "test_metrics": None,
    "device": None,
    "error": None,
}


class FoldResult(NamedTuple):
    state: TrainingState
    accepted: bool  # False: the event only advanced last_position


def fold(state: TrainingState | None, event: ev.Event, position: int) -> TrainingState:
    """The training's state after `event` (stored at `position`)."""
    return apply(state, event, position).state


def fold_stream(events: list[tuple[int, ev.Event]]) -> TrainingState | None:
    """Refold one training's (position, event) pairs, in position order."""
    state: TrainingState | None = None
    for position, event in events:
        state = fold(state, event, position)
    return state


def apply(state: TrainingState | None, event: ev.Event, position: int) -> FoldResult:
    if event.training_id is None:
        raise ValueError(
            f"{event.type} {event.event_id} has no training_id; it folds into no stream"
        )
    if state is None:
        state = _blank(event, position)
    changes: dict[str, Any] = {}
    from_trainer = event.source.startswith(TRAINER_SOURCE_PREFIX)
    if event.type in ev.MODEL_REGISTRY_TYPES:
        # Aliases and deletions concern the model a completed training produced; they change
        # nothing here, only the models read models derive from them.
        accepted = state.status == COMPLETED and state.model is not None
    elif state.status in TERMINAL_STATUSES:
        accepted = event.type == _REQUESTED  # sticky: only request metadata may still arrive
    else:
        accepted = not (from_trainer and event.attempt < state.attempt)
    if accepted:
        if from_trainer and event.attempt > state.attempt:
            changes.update(_new_attempt(state, event))
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(state, event, changes)
    if position > state.last_position:
        changes["last_position"] = position
    if event.occurred_at > state.updated_at:
        changes["updated_at"] = event.occurred_at
    return FoldResult(state.evolve(changes), accepted)


# --- non-finite numbers --------------------------------------------------------------------------
# A diverging run reports NaN/inf losses. Read models store them as None (SQL NULL / JSON null):
# SQLite turns NaN into NULL anyway, JSON has no NaN, and NaN != NaN would make every rebuild
# comparison fail. The events themselves keep the raw values.


def finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def finite_values(value: Any) -> Any:
    """`value` (JSON-like) with every non-finite float replaced by None."""
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, dict):
        return {k: finite_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_values(v) for v in value]
    return value


# --- acceptance --------------------------------------------------------------------------------


def _blank(event: ev.Event, position: int) -> TrainingState:
    return TrainingState(
        training_id=event.training_id or "",
        tenant=event.tenant,
        status=QUEUED,
        attempt=0,
        cancel_requested=False,
        updated_at=event.occurred_at,
        first_position=position,
        last_position=position,
    )


# What an attempt that resumes a checkpoint keeps of the earlier ones: the figures of the epochs
# the checkpoint holds stay true.
_RESUME_KEEPS = ("total_epochs", "latest_metrics", "best_metrics")


def _new_attempt(state: TrainingState, event: ev.Event) -> dict[str, Any]:
    changes = dict(_ATTEMPT_RESET)
    if isinstance(event, ev.Started) and event.resume_epoch is not None:
        for name in _RESUME_KEEPS:
            changes[name] = getattr(state, name)
        changes.update(epoch=event.resume_epoch, batch=event.resume_batch)
    changes.update(
        attempt=event.attempt,
        trainer_id=event.source[len(TRAINER_SOURCE_PREFIX) :],
        # A trainer that dequeues an already-cancelled request never runs it: no start time.
        started_at=None if event.is_terminal else event.occurred_at,
        status=CANCELLING if state.status == CANCELLING else RUNNING,
    )
    return changes


def _current(state: TrainingState, changes: Changes, name: str) -> Any:
    return changes[name] if name in changes else getattr(state, name)


def _mark_running(state: TrainingState, changes: Changes) -> None:
    if _current(state, changes, "status") == QUEUED:
        changes["status"] = RUNNING


# --- handlers: (state, event, changes) -> None ----------------------------------------------------
# `changes` collects the new field values; `_current` reads through it.

Handler = Callable[[TrainingState, Any, Changes], None]


def _requested(state: TrainingState, e: ev.TrainingRequested, changes: Changes) -> None:
    changes.update(
        strategy=e.strategy_name,
        symbols=list(e.symbols),
        timeframes=list(e.timeframes),
        device_requested=e.device,
        requested_at=e.occurred_at,
        idempotency_key=e.idempotency_key,
    )


def _cancel_requested(state: TrainingState, _e: ev.CancelRequested, changes: Changes) -> None:
    if state.status in (QUEUED, RUNNING):
        changes.update(status=CANCELLING, cancel_requested=True)


def _started(state: TrainingState, e: ev.Started, changes: Changes) -> None:
    changes.update(trainer_id=e.trainer_id, device=e.device.model_dump(mode="json"))
    if _current(state, changes, "started_at") is None:
        changes["started_at"] = e.occurred_at
    _mark_running(state, changes)


def _phase_started(state: TrainingState, e: ev.PhaseStarted, changes: Changes) -> None:
    _mark_running(state, changes)
    current = _current(state, changes, "phase_index")
    if current is None or e.index >= current:
        changes.update(phase=e.phase, phase_index=e.index)


def _batch_progress(state: TrainingState, e: ev.BatchProgress, changes: Changes) -> None:
    _mark_running(state, changes)
    epoch, batch = _current(state, changes, "epoch"), _current(state, changes, "batch")
    if (e.epoch, e.batch) < (epoch or 0, batch or 0):
        return
    latest = dict(_current(state, changes, "latest_metrics") or {})
    latest["samples_per_s"] = finite(e.samples_per_s)
    # Unknown running figures (None: before the epoch's first statistics fold) leave the last
    # known ones in place, so a finished training keeps its final running figures.
    if e.running_loss is not None:
        latest["running_loss"] = finite(e.running_loss)
    if e.running_accuracy is not None:
        latest["running_accuracy"] = finite(e.running_accuracy)
    changes.update(
        epoch=e.epoch,
        total_epochs=e.total_epochs,
        batch=e.batch,
        total_batches=e.total_batches,
        progress=finite(e.progress),
        eta_s=finite(e.eta_s),
        latest_metrics=latest,
    )


def _epoch_completed(state: TrainingState, e: ev.EpochCompleted, changes: Changes) -> None:
    _mark_running(state, changes)
    metrics = {
        "epoch": e.epoch,
        "train_loss": finite(e.train_loss),
        "train_accuracy": finite(e.train_accuracy),
        "val_loss": finite(e.val_loss),
        "val_accuracy": finite(e.val_accuracy),
        "learning_rate": finite(e.learning_rate),
    }
    latest = _current(state, changes, "latest_metrics") or {}
    if e.epoch >= latest.get("epoch", e.epoch):
        changes["latest_metrics"] = {**latest, **metrics}  # keeps the newest running_* values
    if e.epoch > (_current(state, changes, "epoch") or 0):
        # The whole epoch is done: a late BatchProgress from inside it must not count as newer.
        batch = _current(state, changes, "total_batches")
        changes.update(epoch=e.epoch, total_epochs=e.total_epochs, batch=batch)
    best = _current(state, changes, "best_metrics")
    if metrics["val_loss"] is not None and (
        best is None or (e.val_loss, e.epoch) < (best["val_loss"], best["epoch"])
    ):
        changes["best_metrics"] = metrics


def _completed(state: TrainingState, e: ev.Completed, changes: Changes) -> None:
    model = e.model.model_dump(mode="json")
    changes.update(
        status=COMPLETED,
        model=model,
        test_metrics=finite_values(e.test_metrics),
        progress=1.0,
        eta_s=0.0,
        finished_at=e.occurred_at,
    )


def _failed(state: TrainingState, e: ev.Failed, changes: Changes) -> None:
    changes.update(
        status=CANCELLED if state.cancel_requested else FAILED,
        error={
            "error_type": e.error_type,
            "message": e.message,
            "phase": e.phase,
            "retryable": e.retryable,
            "traceback": e.traceback,
        },
        finished_at=e.occurred_at,
    )


def _cancelled(state: TrainingState, e: ev.Cancelled, changes: Changes) -> None:
    changes.update(status=CANCELLED, finished_at=e.occurred_at, eta_s=None)


_HANDLERS: dict[str, Handler] = {
    ev.TrainingRequested.TYPE: _requested,
    ev.CancelRequested.TYPE: _cancel_requested,
    ev.Started.TYPE: _started,
    ev.PhaseStarted.TYPE: _phase_started,
    ev.BatchProgress.TYPE: _batch_progress,
    ev.EpochCompleted.TYPE: _epoch_completed,
    ev.Completed.TYPE: _completed,
    ev.Failed.TYPE: _failed,
    ev.Cancelled.TYPE: _cancelled,
}


# --- queries ------------------------------------------------------------------------------------

MAX_PAGE = 500


async def trainings_by_id(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, TrainingState]:
    """The current rows of these trainings (those that exist)."""
    if not ids:
        return {}
    rows = await conn.execute(sa.select(trainings).where(trainings.c.training_id.in_(ids)))
    return {row.training_id: TrainingState.from_row(row) for row in rows}


async def list_trainings(
    conn: AsyncConnection,
    *,
    tenant: str | None,
    status: str | Collection[str] | None,
    strategy: str | None,
    after_cursor: str | None,
    limit: int,
) -> tuple[list[TrainingState], str | None]:
    """Newest first (by the position of the stream's first event); keyset-paginated."""
    check_limit(limit)
    query = sa.select(trainings).order_by(trainings.c.first_position.desc()).limit(limit + 1)
    if tenant is not None:
        query = query.where(trainings.c.tenant == tenant)
    if status is not None:
        query = query.where(trainings.c.status.in_(statuses(status)))
    if strategy is not None:
        query = query.where(trainings.c.strategy == strategy)
    if after_cursor is not None:
        query = query.where(trainings.c.first_position < parse_cursor(after_cursor))
    items = [TrainingState.from_row(row) for row in await conn.execute(query)]
    return page(items, limit)


def page(newest_first: list[TrainingState], limit: int) -> tuple[list[TrainingState], str | None]:
    """The first `limit` items and the cursor of the next page (None: this was the last)."""
    more = len(newest_first) > limit
    return newest_first[:limit], str(newest_first[limit - 1].first_position) if more else None


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")


def statuses(status: str | Collection[str]) -> list[str]:
    """The statuses a list filter names, each checked against STATUSES."""
    wanted = [status] if isinstance(status, str) else list(status)
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise ValueError(f"status {unknown[0]!r} is not one of {', '.join(STATUSES)}")
    return wanted


def parse_cursor(cursor: str) -> int:
    """A list page's cursor: the first_position below which the next page starts."""
    try:
        position = int(cursor)
    except ValueError:
        position = -1
    if not 0 <= position <= MAX_POSITION:
        raise ValueError(f"after_cursor {cursor!r} is not a cursor returned by a previous page")
    return position


READ_MODEL = ReadModel(table=trainings, row_type=TrainingState)
