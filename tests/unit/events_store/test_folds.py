"""The pure folds (libs/events/readmodels/): statuses, sticky terminals, attempts, cancel, order,
and the rows the derived read models take from accepted events."""

from __future__ import annotations

from typing import Any, NamedTuple

from libs.events.catalog import Event
from libs.events.readmodels import models, training_epochs, trainings
from libs.events.readmodels.projection import Projection
from libs.events.readmodels.trainings import (
    CANCELLED,
    CANCELLING,
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    TrainingState,
    fold,
    fold_stream,
)
from tests.support.events import TrainingScript


class Step(NamedTuple):
    state: TrainingState
    accepted: bool
    epoch: Any  # the training_epochs row the event added, if any
    model: Any  # the models row the event added, if any


def apply(state: TrainingState | None, event: Event, position: int) -> Step:
    """The trainings fold of one event plus what the registered read models derived from it."""
    result = trainings.apply(state, event, position)
    projection = Projection({} if state is None else {state.training_id: state})
    projection.apply(position, event)
    epochs = list(projection.rows(training_epochs.READ_MODEL).values())
    added = list(projection.rows(models.READ_MODEL).values())
    return Step(result.state, result.accepted, next(iter(epochs), None), next(iter(added), None))


def fold_all(events, start=1):
    """Fold events at consecutive positions; returns the final state."""
    return fold_stream([(start + i, e) for i, e in enumerate(events)])


def test_requested_training_is_queued_with_its_request():
    s = TrainingScript("t-1", tenant="acme")
    req = s.requested(idempotency_key="k-1")
    state = fold(None, req, 7)
    assert state.status == QUEUED
    assert (state.tenant, state.strategy, state.symbols) == ("acme", s.strategy, ["AAPL"])
    assert state.requested_at == req.occurred_at
    assert state.idempotency_key == "k-1"
    assert state.first_position == state.last_position == 7


def test_full_run_completes_with_model_progress_and_best_metrics():
    s = TrainingScript("t-1")
    events = [s.requested(), *s.run(epochs=4, batches=5)]
    state = fold_all(events)
    assert state.status == COMPLETED
    assert state.model["version"] == 1 and state.model["strategy"] == s.strategy
    assert state.progress == 1.0
    assert state.finished_at == events[-1].occurred_at
    assert state.phase == "saving"
    # best = lowest val_loss among the epochs actually emitted, not the last one
    epochs = [e for e in events if e.type == "EpochCompleted"]
    best = min(epochs, key=lambda e: e.val_loss)
    assert state.best_metrics["epoch"] == best.epoch != epochs[-1].epoch
    assert state.latest_metrics["epoch"] == epochs[-1].epoch
    assert state.last_position == len(events)


def test_epoch_and_model_rows_are_derived_from_accepted_events():
    s = TrainingScript("t-1")
    state = fold(None, s.requested(), 1)
    epoch = apply(state, s.epoch_completed(1, 0.7), 2)
    assert epoch.epoch is not None and epoch.epoch.key == ("t-1", 1, 1)
    assert epoch.epoch.val_loss == 0.7 and epoch.epoch.position == 2
    done = apply(epoch.state, s.completed(version=3), 3)
    assert done.model is not None
    assert done.model.key == ("default", s.strategy, s.timeframe, 3)
    assert models.READ_MODEL.key(done.model) == done.model.key  # the key is the primary key
    assert done.model.training_id == "t-1" and done.model.test_metrics == {"accuracy": 0.61}


def test_terminal_states_are_sticky():
    for outcome, status in (("completed", COMPLETED), ("failed", FAILED), ("cancelled", CANCELLED)):
        s = TrainingScript("t-1")
        events = [s.requested(), *s.run(epochs=2, batches=2, outcome=outcome)]
        final = fold_all(events)
        assert final.status == status
        late = [
            s.batch(1, 1),
            s.epoch_completed(1, 0.01),
            s.failed(),
            s.cancelled(),
            s.completed(version=9),
            s.cancel_requested(),
            s.started(attempt=2, trainer="t2"),
        ]
        position = final.last_position
        state = final
        for event in late:
            position += 1
            result = apply(state, event, position)
            assert not result.accepted
            assert result.epoch is None and result.model is None
            state = result.state
        assert state.status == status
        assert state.model == final.model and state.error == final.error
        assert (state.attempt, state.trainer_id) == (final.attempt, final.trainer_id)
        assert state.last_position == position  # last_position always advances


def test_late_request_metadata_fills_in_but_keeps_terminal_status():
    s = TrainingScript("t-1")
    run = s.run(epochs=1, batches=1)
    req = s.requested()
    state = fold_all([*run, req])
    assert state.status == COMPLETED
    assert state.strategy == s.strategy and state.requested_at == req.occurred_at


def test_new_attempt_resets_progress_and_takes_over():
    s = TrainingScript("t-1")
    first = s.run(epochs=3, batches=4, attempt=1, trainer="t1", outcome="none")
    state = fold_all([s.requested(), *first[:12]])
    assert state.attempt == 1 and state.epoch is not None and state.progress > 0
    restart = s.started(attempt=2, trainer="t2")
    state = fold(state, restart, 100)
    assert state.status == RUNNING
    assert (state.attempt, state.trainer_id, state.started_at) == (2, "t2", restart.occurred_at)
    assert state.device == {"type": "cpu", "name": "x86_64"}
    for reset in ("phase", "phase_index", "epoch", "batch", "progress", "eta_s", "latest_metrics"):
        assert getattr(state, reset) is None, reset


def test_events_of_a_newer_attempt_start_it_even_before_its_started():
    s = TrainingScript("t-1")
    state = fold_all([s.requested(), s.started(1, "t1"), s.batch(2, 5, attempt=1)])
    state = fold(state, s.phase("data_loading", 0, attempt=2, trainer="t2"), 10)
    assert (state.attempt, state.trainer_id, state.phase, state.epoch) == (
        2,
        "t2",
        "data_loading",
        None,
    )


def test_stale_attempt_events_are_ignored():
    s = TrainingScript("t-1")
    state = fold_all(
        [s.requested(), s.started(1, "t1"), s.started(2, "t2"), s.batch(1, 2, attempt=2)]
    )
    before = state
    for zombie in (
        s.batch(3, 9, attempt=1),
        s.epoch_completed(3, 0.01, attempt=1),
        s.completed(attempt=1),
    ):
        result = apply(state, zombie, state.last_position + 1)
        assert not result.accepted and result.epoch is None and result.model is None
        state = result.state
    assert state.status == RUNNING
    assert (state.attempt, state.epoch, state.batch, state.model) == (2, 1, 2, None)
    assert state.best_metrics == before.best_metrics


def test_cancel_while_queued_then_trainer_reports_cancelled_without_running():
    s = TrainingScript("t-1")
    state = fold_all([s.requested(), s.cancel_requested()])
    assert (state.status, state.cancel_requested) == (CANCELLING, True)
    state = fold(state, s.cancelled(attempt=1, trainer="t1"), 3)
    assert state.status == CANCELLED
    assert state.started_at is None and state.phase is None


def test_cancel_while_running_and_a_new_attempt_keeps_cancelling():
    s = TrainingScript("t-1")
    state = fold_all([s.requested(), *s.run(outcome="none")[:5], s.cancel_requested()])
    assert state.status == CANCELLING
    state = fold(state, s.started(attempt=2, trainer="t2"), 50)  # redelivered after a crash
    assert state.status == CANCELLING and state.attempt == 2
    state = fold(state, s.cancelled(attempt=2, trainer="t2", phase="training"), 51)
    assert state.status == CANCELLED and state.finished_at is not None


def test_a_cancelled_training_never_shows_failed():
    s = TrainingScript("t-1")
    state = fold_all([s.requested(), s.started(), s.cancel_requested()])
    state = fold(state, s.failed(error_type="TrainingCancelled", message="stopped"), 10)
    assert state.status == CANCELLED
    assert state.error["error_type"] == "TrainingCancelled"  # still recorded


def test_failure_without_cancel_is_failed_with_error():
    s = TrainingScript("t-1")
    state = fold_all([s.requested(), s.started(), s.failed(message="no data", retryable=True)])
    assert state.status == FAILED
    assert state.error["message"] == "no data" and state.error["retryable"] is True


def test_progress_never_moves_backwards_within_an_attempt():
    s = TrainingScript("t-1")
    newer_phase, older_phase = s.phase("training", 8), s.phase("fuzzy", 2)
    newer_batch, older_batch = s.batch(2, 7), s.batch(2, 3)
    state = fold_all(
        [s.requested(), s.started(), newer_phase, newer_batch, older_phase, older_batch]
    )
    assert (state.phase, state.phase_index) == ("training", 8)
    assert (state.epoch, state.batch, state.progress) == (2, 7, newer_batch.progress)
    assert state.latest_metrics["running_loss"] == newer_batch.running_loss


def test_unknown_running_figures_keep_the_last_known_ones():
    s = TrainingScript("t-1")
    known = s.batch(1, 13)
    unknown = s.batch(2, 1).model_copy(update={"running_loss": None, "running_accuracy": None})
    state = fold_all([s.requested(), s.started(), known, unknown, s.completed()])
    assert state.latest_metrics["running_loss"] == known.running_loss != 0
    assert state.latest_metrics["running_accuracy"] == known.running_accuracy
    assert (state.epoch, state.batch) == (2, 1)  # the position still moved on


def test_an_attempt_resuming_a_checkpoint_keeps_the_figures_and_continues():
    s = TrainingScript("t-1")
    first = [s.requested(), s.started(), s.batch(1, 13), s.epoch_completed(1, 0.9)]
    first += [s.epoch_completed(2, 0.5), s.batch(3, 4)]
    resumed = s.started(attempt=2, trainer="t2").model_copy(
        update={"resume_epoch": 3, "resume_batch": 0}
    )
    state = fold_all([*first, resumed])
    assert (state.attempt, state.trainer_id, state.status) == (2, "t2", "running")
    assert (state.epoch, state.batch) == (3, 0)
    assert state.best_metrics["epoch"] == 2 and state.latest_metrics["epoch"] == 2
    fresh = fold_all([*first, s.started(attempt=2, trainer="t2")])
    assert fresh.best_metrics is None and fresh.epoch is None  # a fresh start resets them


def test_running_figures_are_absent_until_known():
    s = TrainingScript("t-1")
    unknown = s.batch(1, 1).model_copy(update={"running_loss": None, "running_accuracy": None})
    state = fold_all([s.requested(), s.started(), unknown])
    assert "running_loss" not in state.latest_metrics
    assert "running_accuracy" not in state.latest_metrics


def test_epoch_completed_out_of_order_keeps_latest_and_best():
    s = TrainingScript("t-1")
    e1, e2, e3 = s.epoch_completed(1, 0.9), s.epoch_completed(2, 0.4), s.epoch_completed(3, 0.6)
    in_order = fold_all([s.requested(), s.started(), e1, e2, e3])
    shuffled = fold_all([s.requested(), s.started(), e3, e1, e2])
    for state in (in_order, shuffled):
        assert state.latest_metrics["epoch"] == 3
        assert state.best_metrics["epoch"] == 2 and state.best_metrics["val_loss"] == 0.4
        assert state.epoch == 3


def test_a_late_batch_of_a_finished_epoch_does_not_count_as_newer():
    s = TrainingScript("t-1")
    state = fold_all([s.requested(), s.started(), s.batch(1, 10, total_batches=10)])
    state = fold(state, s.epoch_completed(2, 0.5), 4)  # epoch 2's batches were throttled away
    state = fold(state, s.batch(2, 3, total_batches=10), 5)  # arrives late
    assert (state.epoch, state.batch) == (2, 10)


def test_trainer_events_before_the_request_create_a_running_training():
    s = TrainingScript("t-1", tenant="acme")
    req = s.requested()
    started = s.started()
    state = fold_all([started, req])
    assert (state.status, state.tenant, state.strategy) == (RUNNING, "acme", s.strategy)
    assert state.first_position == 1


def test_cancel_on_a_terminal_training_changes_nothing():
    s = TrainingScript("t-1")
    done = fold_all([s.requested(), *s.run(epochs=1, batches=1)])
    after = fold(done, s.cancel_requested(), done.last_position + 1)
    assert (after.status, after.cancel_requested) == (COMPLETED, False)


def test_state_as_of_is_a_prefix_refold():
    s = TrainingScript("t-1")
    events = [s.requested(), *s.run(epochs=2, batches=3)]
    positions = list(range(1, len(events) + 1))
    for cut in (1, 2, 5, len(events)):
        prefix = fold_stream(list(zip(positions[:cut], events[:cut], strict=True)))
        assert prefix.last_position == cut
        expected_status = COMPLETED if cut == len(events) else (QUEUED if cut == 1 else RUNNING)
        assert prefix.status == expected_status


def test_fold_refuses_events_without_a_stream():
    s = TrainingScript("t-1")
    try:
        fold(None, s.heartbeat(), 1)
    except ValueError as exc:
        assert "training_id" in str(exc)
    else:
        raise AssertionError("a heartbeat has no stream to fold into")
