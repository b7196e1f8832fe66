"""ProjectorService end to end on SQLite + the in-memory bus: append once, fold, never move
backwards, heartbeats, dead-lettered requests → Failed, poison events → dead letters."""

from __future__ import annotations

import asyncio
import uuid

from libs.events.bus.policy import REASON_HEADER, REASON_KIND_HEADER
from libs.events.bus.port import Delivery
from libs.events.readmodels.trainings import COMPLETED, FAILED
from services.projector.admission import NOT_FROM_A_TRAINER, UNKNOWN_TRAINING
from services.projector.dead_letters import DEAD_LETTERED, PROJECTOR_SOURCE
from tests.support.events import TrainingScript
from tests.unit.projector.conftest import DELIVERY_LIMIT, Projected


def script() -> TrainingScript:
    return TrainingScript(f"t-{uuid.uuid4().hex[:8]}")


async def test_every_event_is_stored_once_and_folded_even_when_redelivered(projected: Projected):
    run = script()
    events = [run.requested(), *run.run(epochs=3, batches=4)]
    await projected.publish(*events[:10])
    await projected.publish(*events[5:15])  # a redelivered stretch: duplicates by event_id
    await projected.publish(*events[10:], *events[-3:])
    state = await projected.until(lambda: _terminal(projected, run.training_id))

    stored = await projected.store.read_stream(run.training_id)
    assert [s.event.event_id for s in stored] == [e.event_id for e in events]
    assert state.status == COMPLETED and state.epoch == 3 and state.model is not None
    assert state.last_position == stored[-1].position
    epochs = await projected.store.list_epochs(run.training_id)
    assert [e.epoch for e in epochs] == [1, 2, 3]


async def test_late_and_stale_events_never_move_a_training_backwards(projected: Projected):
    run = script()
    events = [run.requested(), *run.run(epochs=2, batches=3)]
    await projected.publish(*events)
    done = await projected.until(lambda: _terminal(projected, run.training_id))
    late = [
        run.batch(1, 1, total_epochs=2, total_batches=3),  # out of order, same attempt
        run.phase("data_loading", 0),
        run.failed(),  # a second terminal event: terminal states are sticky
        run.cancel_requested(),
    ]
    await projected.publish(*late)
    await projected.until_stored(len(events) + len(late))

    after = await projected.store.get_training(run.training_id)
    assert after.status == COMPLETED
    assert (after.phase, after.epoch, after.batch, after.progress) == (
        done.phase,
        done.epoch,
        done.batch,
        done.progress,
    )
    assert after.model == done.model and after.error is None
    assert after.last_position > done.last_position  # the log did take them


async def test_a_newer_attempt_resets_progress_and_the_old_attempt_is_ignored(projected):
    run = script()
    first = run.run(epochs=2, batches=3, outcome="none", attempt=1, trainer="a")
    await projected.publish(run.requested(), *first)
    second = run.started(attempt=2, trainer="b")
    zombie = run.batch(2, 3, total_epochs=2, total_batches=3, attempt=1, trainer="a")
    await projected.publish(second, zombie)
    await projected.until_stored(len(first) + 3)
    state = await projected.store.get_training(run.training_id)
    assert state.attempt == 2 and state.trainer_id == "b"
    assert state.epoch is None and state.batch is None  # reset, and the zombie's batch ignored


async def test_heartbeats_update_the_trainers_table(projected: Projected):
    run = script()
    beat = run.heartbeat(trainer="gpu-1", running=[run.training_id])
    # Heartbeats are not stored in the log (no notification of their own): the Started behind
    # it on the single-active queue is committed in the same batch or a later one.
    await projected.publish(run.requested())
    await projected.publish(beat, run.started())
    await projected.until_stored(2)
    rows = [t for t in await projected.store.list_trainers() if t.trainer_id == "gpu-1"]
    assert len(rows) == 1 and rows[0].running == [run.training_id]
    assert rows[0].device["type"] == "cpu"


async def test_a_request_dead_lettered_by_the_trainers_becomes_failed(projected: Projected):
    run = script()
    request = run.requested()
    attempts: list[int] = []

    async def crashing_trainer(delivery: Delivery) -> None:
        attempts.append(delivery.delivery_count)
        raise RuntimeError("trainer crashed")

    topology = projected.bus.topology
    trainer = await projected.bus.consume(topology.trainer_queue("any"), crashing_trainer)
    try:
        await projected.publish(request)
        state = await projected.until(lambda: _terminal(projected, run.training_id))
    finally:
        await trainer.stop()

    assert attempts == list(range(DELIVERY_LIMIT + 1))
    assert state.status == FAILED
    assert state.error["error_type"] == DEAD_LETTERED and state.error["retryable"] is False
    assert f"after {DELIVERY_LIMIT + 1} deliveries" in state.error["message"]
    stream = await projected.store.read_stream(run.training_id)
    assert [s.event.type for s in stream] == ["TrainingRequested", "Failed"]
    assert stream[1].event.source == PROJECTOR_SOURCE
    assert stream[1].event.correlation_id == str(request.event_id)


async def test_a_redelivered_dead_letter_adds_no_second_failed(projected: Projected):
    run = script()
    request = run.requested()
    death = {"queue": projected.bus.topology.trainer_queue("cpu"), "reason": "delivery_limit"}
    delivery = Delivery(
        event=request,
        queue="dead",
        routing_key="training.requested.cpu",
        redelivered=True,
        headers={"x-death": [death]},
    )
    handler = projected.service.dead_letters
    await handler.handle(delivery)
    handler._is_over = _never_over  # even without the "already over" shortcut: same event_id
    await handler.handle(delivery)
    stream = await projected.store.read_stream(run.training_id)
    assert [s.event.type for s in stream] == ["TrainingRequested", "Failed"]


async def test_a_dead_letter_for_a_finished_training_is_ignored(projected: Projected):
    run = script()
    request = run.requested()
    await projected.publish(request, *run.run(epochs=1, batches=2))
    await projected.until(lambda: _terminal(projected, run.training_id))
    before = await projected.store.read_stream(run.training_id)
    await projected.service.dead_letters.handle(
        Delivery(
            event=request, queue="dead", routing_key="training.requested.any", redelivered=False
        )
    )
    assert await projected.store.read_stream(run.training_id) == before


async def test_a_poison_event_is_dead_lettered_and_the_projector_keeps_going(projected):
    run = script()
    topology = projected.bus.topology
    parked: asyncio.Queue[Delivery] = asyncio.Queue()

    async def park(delivery: Delivery) -> None:
        await parked.put(delivery)

    await projected.bus.consume(topology.dead_queue, park)
    # A Started without a training stream: the database works, the store refuses it.
    poison = run.started().model_copy(update={"training_id": None})
    healthy = [run.requested(), run.started()]
    await projected.publish(poison, *healthy)
    dead = await asyncio.wait_for(parked.get(), 10)
    assert dead.event.event_id == poison.event_id
    assert dead.routing_key == "projector.rejected"  # never loops back to dead_requests
    await projected.until_stored(2)
    assert projected.service.committer.stats.poison == DELIVERY_LIMIT + 1
    state = await projected.store.get_training(run.training_id)
    assert state.status == "running"


async def _dead_letters(projected: Projected) -> asyncio.Queue[Delivery]:
    parked: asyncio.Queue[Delivery] = asyncio.Queue()

    async def park(delivery: Delivery) -> None:
        await parked.put(delivery)

    await projected.bus.consume(projected.bus.topology.dead_queue, park)
    return parked


async def test_events_of_a_training_the_log_does_not_know_are_dead_lettered_not_folded(
    projected: Projected,
):
    parked = await _dead_letters(projected)
    phantom = script()
    started, cancel = phantom.started(), phantom.cancel_requested()
    await projected.bus.publish_many([started, cancel])  # over the bus only, never the API
    for expected in (started, cancel):
        dead = await asyncio.wait_for(parked.get(), 10)
        assert dead.event.event_id == expected.event_id
        assert dead.headers[REASON_KIND_HEADER] == UNKNOWN_TRAINING
        assert "which the log does not know" in dead.headers[REASON_HEADER]
    # A real training behind them is folded: the phantom left no row and nothing in the log.
    real = script()
    await projected.publish(real.requested(), real.started())
    await projected.until(lambda: _running(projected, real.training_id))
    assert await projected.store.get_training(phantom.training_id) is None
    assert await projected.store.read_stream(phantom.training_id) == []


async def test_api_events_from_the_bus_are_never_stored_again(projected: Projected):
    parked = await _dead_letters(projected)
    run = script()
    await projected.publish(run.requested())  # appended by the API, then relayed
    forged = run.started().model_copy(update={"source": "api"})  # an API claim on a trainer type
    await projected.bus.publish_many([run.requested(), forged, run.started()])
    dead = await asyncio.wait_for(parked.get(), 10)
    assert dead.event.event_id == forged.event_id
    assert dead.headers[REASON_KIND_HEADER] == NOT_FROM_A_TRAINER
    await projected.until(lambda: _running(projected, run.training_id))
    stored = await projected.store.read_stream(run.training_id)
    assert [s.event.type for s in stored] == ["TrainingRequested", "Started"]


async def test_an_event_naming_another_tenant_is_dead_lettered(projected: Projected):
    parked = await _dead_letters(projected)
    run = script()
    await projected.publish(run.requested())
    other = run.started().model_copy(update={"tenant": "someone-else"})
    await projected.bus.publish(other)
    dead = await asyncio.wait_for(parked.get(), 10)
    assert dead.event.event_id == other.event_id and "another tenant" in dead.headers[REASON_HEADER]


async def _running(projected: Projected, training_id: str):
    state = await projected.store.get_training(training_id)
    return state if state is not None and state.status == "running" else None


async def _terminal(projected: Projected, training_id: str):
    state = await projected.store.get_training(training_id)
    return state if state is not None and state.is_terminal else None


async def _never_over(_training_id: str) -> bool:
    return False
