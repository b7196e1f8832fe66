"""Pure folds from events to read models (DESIGN §3, §5). No I/O: the store applies them inside
its append transaction, `rebuild` and `state_as_of` refold the log with the very same code.

Rules, in the order they are applied to an event for training T in state S:
1. A trainer event (source "trainer:<id>") from an attempt older than S.attempt is a zombie's
   and is ignored. One from a newer attempt starts that attempt: progress (phase, epoch, batch,
   progress, eta, metrics) is reset and attempt/trainer/started_at set, even before its Started
   arrives. API and projector events carry no attempt and always apply.
2. Terminal states (completed, failed, cancelled) are sticky: afterwards only a late
   TrainingRequested may fill in request metadata (strategy, symbols, ...); nothing moves the
   status, progress or result.
3. Progress never moves backwards within an attempt: a PhaseStarted with a lower index, a
   BatchProgress for an earlier (epoch, batch) or an EpochCompleted for an earlier epoch leave
   the position fields alone (out-of-order delivery). Best metrics are the lowest val_loss.
4. CancelRequested on queued/running -> cancelling. A Failed while a cancel was requested is
   shown as cancelled (the error is still recorded): a cancelled training never shows failed.
5. last_position (and updated_at) advance with every event, whether it changed anything or not.

`apply()` also derives the `training_epochs` / `models` rows the event adds, only when the event
was accepted (so a stale attempt's epochs or a second Completed add nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from libs.events import catalog as ev
from libs.events.state import (
    CANCELLED,
    CANCELLING,
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    TERMINAL_STATUSES,
    EpochRow,
    ModelRow,
    TrainerRow,
    TrainingState,
)

TRAINER_SOURCE_PREFIX = "trainer:"
_REQUESTED = ev.TrainingRequested.TYPE

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
    epoch: EpochRow | None = None
    model: ModelRow | None = None


def fold(state: TrainingState | None, event: ev.Event, position: int) -> TrainingState:
    """The training's state after `event` (stored at `position`)."""
    return apply(state, event, position).state


def fold_stream(events: list[tuple[int, ev.Event]]) -> TrainingState | None:
    """Refold one training's (position, event) pairs, in position order."""
    state: TrainingState | None = None
    for position, event in events:
        state = fold(state, event, position)
    return state


def is_trainer_event(event: ev.Event) -> bool:
    return event.source.startswith(TRAINER_SOURCE_PREFIX)


def apply(state: TrainingState | None, event: ev.Event, position: int) -> FoldResult:
    if event.training_id is None:
        raise ValueError(
            f"{event.type} {event.event_id} has no training_id; it folds into no stream"
        )
    if state is None:
        state = _blank(event, position)
    changes: dict[str, Any] = {}
    derived: dict[str, Any] = {}
    from_trainer = event.source.startswith(TRAINER_SOURCE_PREFIX)
    if state.status in TERMINAL_STATUSES:
        accepted = event.type == _REQUESTED  # sticky: only request metadata may still arrive
    else:
        accepted = not (from_trainer and event.attempt < state.attempt)
    if accepted:
        if from_trainer and event.attempt > state.attempt:
            changes.update(_new_attempt(state, event))
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(state, event, position, changes, derived)
    if position > state.last_position:
        changes["last_position"] = position
    if event.occurred_at > state.updated_at:
        changes["updated_at"] = event.occurred_at
    return FoldResult(state.evolve(changes), accepted, derived.get("epoch"), derived.get("model"))


def trainer_row(event: ev.TrainerHeartbeat) -> TrainerRow:
    return TrainerRow(
        trainer_id=event.trainer_id,
        host=event.host,
        device=event.device.model_dump(mode="json"),
        concurrency=event.concurrency,
        running=list(event.running),
        last_seen=event.occurred_at,
    )


# --- non-finite numbers --------------------------------------------------------------------------
# A diverging run reports NaN/inf losses. Read models store them as None (SQL NULL / JSON null):
# SQLite turns NaN into NULL anyway, JSON has no NaN, and NaN != NaN would make every rebuild
# comparison fail. The events themselves keep the raw values.


def _num(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
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


def _new_attempt(state: TrainingState, event: ev.Event) -> dict[str, Any]:
    changes = dict(_ATTEMPT_RESET)
    changes.update(
        attempt=event.attempt,
        trainer_id=event.source[len(TRAINER_SOURCE_PREFIX) :],
        # A trainer that dequeues an already-cancelled request never runs it: no start time.
        started_at=None if event.is_terminal else event.occurred_at,
        status=CANCELLING if state.status == CANCELLING else RUNNING,
    )
    return changes


def _current(state: TrainingState, changes: dict[str, Any], name: str) -> Any:
    return changes[name] if name in changes else getattr(state, name)


def _mark_running(state: TrainingState, changes: dict[str, Any]) -> None:
    if _current(state, changes, "status") == QUEUED:
        changes["status"] = RUNNING


# --- handlers: (state, event, position, changes, derived) -> None --------------------------------

Handler = Callable[[TrainingState, Any, int, dict[str, Any], dict[str, Any]], None]


def _requested(state: TrainingState, e: ev.TrainingRequested, _p: int, changes, _d) -> None:
    changes.update(
        strategy=e.strategy_name,
        symbols=list(e.symbols),
        timeframes=list(e.timeframes),
        device_requested=e.device,
        requested_at=e.occurred_at,
        idempotency_key=e.idempotency_key,
    )


def _cancel_requested(state: TrainingState, _e: ev.CancelRequested, _p, changes, _d) -> None:
    if state.status in (QUEUED, RUNNING):
        changes.update(status=CANCELLING, cancel_requested=True)


def _started(state: TrainingState, e: ev.Started, _p: int, changes, _d) -> None:
    changes.update(trainer_id=e.trainer_id, device=e.device.model_dump(mode="json"))
    if _current(state, changes, "started_at") is None:
        changes["started_at"] = e.occurred_at
    _mark_running(state, changes)


def _phase_started(state: TrainingState, e: ev.PhaseStarted, _p: int, changes, _d) -> None:
    _mark_running(state, changes)
    current = _current(state, changes, "phase_index")
    if current is None or e.index >= current:
        changes.update(phase=e.phase, phase_index=e.index)


def _batch_progress(state: TrainingState, e: ev.BatchProgress, _p: int, changes, _d) -> None:
    _mark_running(state, changes)
    epoch, batch = _current(state, changes, "epoch"), _current(state, changes, "batch")
    if (e.epoch, e.batch) < (epoch or 0, batch or 0):
        return
    latest = dict(_current(state, changes, "latest_metrics") or {})
    latest.update(
        running_loss=_num(e.running_loss),
        running_accuracy=_num(e.running_accuracy),
        samples_per_s=_num(e.samples_per_s),
    )
    changes.update(
        epoch=e.epoch,
        total_epochs=e.total_epochs,
        batch=e.batch,
        total_batches=e.total_batches,
        progress=_num(e.progress),
        eta_s=_num(e.eta_s),
        latest_metrics=latest,
    )


def _epoch_completed(state: TrainingState, e: ev.EpochCompleted, p: int, changes, derived) -> None:
    _mark_running(state, changes)
    metrics = {
        "epoch": e.epoch,
        "train_loss": _num(e.train_loss),
        "train_accuracy": _num(e.train_accuracy),
        "val_loss": _num(e.val_loss),
        "val_accuracy": _num(e.val_accuracy),
        "learning_rate": _num(e.learning_rate),
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
    derived["epoch"] = EpochRow(
        training_id=state.training_id,
        attempt=_current(state, changes, "attempt"),
        epoch=e.epoch,
        total_epochs=e.total_epochs,
        train_loss=metrics["train_loss"],
        train_accuracy=metrics["train_accuracy"],
        val_loss=metrics["val_loss"],
        val_accuracy=metrics["val_accuracy"],
        learning_rate=metrics["learning_rate"],
        duration_s=_num(e.duration_s),
        best_epoch=e.best_epoch,
        occurred_at=e.occurred_at,
        position=p,
    )


def _completed(state: TrainingState, e: ev.Completed, p: int, changes, derived) -> None:
    model = e.model.model_dump(mode="json")
    changes.update(
        status=COMPLETED,
        model=model,
        test_metrics=_clean(e.test_metrics),
        progress=1.0,
        eta_s=0.0,
        finished_at=e.occurred_at,
    )
    derived["model"] = ModelRow(
        **model,
        tenant=state.tenant,
        training_id=state.training_id,
        created_at=e.occurred_at,
        test_metrics=_clean(e.test_metrics),
        position=p,
    )


def _failed(state: TrainingState, e: ev.Failed, _p: int, changes, _d) -> None:
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


def _cancelled(state: TrainingState, e: ev.Cancelled, _p: int, changes, _d) -> None:
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
