"""`ktrdr trainer` processes on the real RabbitMQ: events, cancellation, crashes, poison.

Every test starts real trainer subprocesses on a fresh topology prefix (deleted afterwards),
with a tmp models dir and the sample EURUSD data; each training takes seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
from pathlib import Path

import aio_pika
import pytest

from libs.events.catalog import Event
from libs.pipeline.progress import PHASES
from tests.integration.trainer.harness import BusProbe, long_request, nmr_request

pytestmark = pytest.mark.integration


def idle_beat_after(probe: BusProbe, trainer_id: str, terminal: Event):
    """True once the trainer sent a heartbeat, with nothing running, after `terminal` arrived:
    anything the run could still publish would have come before it."""
    after = probe.events[probe.events.index(terminal) :]
    return any(
        e.type == "TrainerHeartbeat" and e.trainer_id == trainer_id and not e.running for e in after
    )


def saved_model_digest(model_dir: Path) -> tuple[str, int]:
    """(sha256 of model.pt, bytes of the whole model folder), read from disk."""
    sha = hashlib.sha256((model_dir / "model.pt").read_bytes()).hexdigest()
    return sha, sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())


async def test_one_training_publishes_the_full_event_sequence_in_order(probe, spawn):
    trainer = spawn("seq")
    await probe.wait_ready(trainer)
    req = nmr_request(epochs=3, early_stopping=None)
    await probe.publish(req)
    terminal = await probe.wait_terminal(req.training_id)

    events = probe.trainer_events(req.training_id)
    types = [e.type for e in events]
    assert terminal.type == "Completed", terminal
    assert types[0] == "Started" and types[-1] == "Completed"
    assert [e.phase for e in events if e.type == "PhaseStarted"] == list(PHASES)
    # Progress sits inside the training phase: every batch of each epoch, then the epoch.
    phase_at = {e.phase: i for i, e in enumerate(events) if e.type == "PhaseStarted"}
    first, last = phase_at["training"], phase_at["evaluation"]
    progress = events[first + 1 : last]
    assert [e.epoch for e in progress if e.type == "EpochCompleted"] == [1, 2, 3]
    for epoch in (1, 2, 3):
        batches = [e for e in progress if e.type == "BatchProgress" and e.epoch == epoch]
        assert [b.batch for b in batches] == list(range(1, batches[0].total_batches + 1))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {(e.attempt, e.source, e.correlation_id) for e in events} == {
        (1, "trainer:seq", str(req.event_id))
    }
    started = events[0]
    assert (started.trainer_id, started.device.type) == ("seq", "cpu")
    assert started.device.model_extra.get("torch_version")  # DeviceManager capabilities

    assert saved_model_digest(Path(terminal.model.path)) == (
        terminal.model.sha256,
        terminal.model.bytes,
    )
    assert terminal.training_metrics["epochs_run"] == 3
    assert 0.0 <= terminal.test_metrics["accuracy"] <= 1.0


async def test_cancel_mid_training_stops_within_one_batch(probe, spawn):
    trainer = spawn("cancel")
    await probe.wait_ready(trainer)
    req = long_request()
    await probe.publish(req)
    await probe.wait_for(lambda _: probe.of(req.training_id, "BatchProgress"))
    await probe.cancel(req.training_id)
    received_at_cancel = len(probe.of(req.training_id, "BatchProgress"))
    terminal = await probe.wait_terminal(req.training_id)
    await probe.wait_for(lambda _: idle_beat_after(probe, "cancel", terminal))

    assert terminal.type == "Cancelled", terminal
    assert (terminal.phase, terminal.reason) == ("training", "test cancel")
    events = probe.trainer_events(req.training_id)
    assert events[-1] == terminal  # no BatchProgress (or anything) after Cancelled
    # Every batch is published (interval 0), so the count of BatchProgress is the count of
    # batches run. The trainer logs how many had run when the cancel reached the token: at most
    # the one in flight may finish after that.
    applied = trainer.log_match(
        rf"CancelRequested applied to {req.training_id} attempt 1 after (\d+) batches"
    )
    assert applied, trainer.log()
    batches = len(probe.of(req.training_id, "BatchProgress"))
    assert batches <= int(applied[1]) + 1
    print(
        f"batches after the cancel was confirmed: {batches - received_at_cancel} "
        f"(received when confirmed: {received_at_cancel}; run when applied: {applied[1]})"
    )


async def test_a_training_cancelled_before_any_trainer_took_it_never_starts(probe, spawn):
    queued = nmr_request()
    await probe.publish(queued)  # no trainer yet: it waits in the queue
    await probe.cancel(queued.training_id)
    trainer = spawn("late")  # boots, replays the control stream, then consumes
    await probe.wait_ready(trainer)
    terminal = await probe.wait_terminal(queued.training_id)
    assert (terminal.type, terminal.phase, terminal.attempt) == ("Cancelled", None, 1)

    # Cancelled just before it is dequeued by a running trainer: same outcome.
    racing = nmr_request()
    await probe.cancel(racing.training_id)
    await probe.publish(racing)
    racing_terminal = await probe.wait_terminal(racing.training_id)
    await probe.wait_for(lambda _: idle_beat_after(probe, "late", racing_terminal))

    assert (racing_terminal.type, racing_terminal.phase) == ("Cancelled", None)
    for req in (queued, racing):
        assert probe.of(req.training_id, "Started", "PhaseStarted", "BatchProgress") == []


async def test_kill_9_mid_training_the_other_trainer_completes_attempt_2(probe, spawn):
    trainers = {t.trainer_id: t for t in (spawn("one"), spawn("two"))}
    for trainer in trainers.values():
        await probe.wait_ready(trainer)
    req = nmr_request(epochs=8, early_stopping=None)
    await probe.publish(req)
    await probe.wait_for(lambda _: probe.of(req.training_id, "BatchProgress"))
    (first,) = probe.of(req.training_id, "Started")
    victim = trainers.pop(first.trainer_id)
    (survivor,) = trainers.values()
    victim.kill9()

    terminal = await probe.wait_terminal(req.training_id)
    await probe.wait_for(lambda _: idle_beat_after(probe, survivor.trainer_id, terminal))
    assert (terminal.type, terminal.attempt, terminal.source) == (
        "Completed",
        2,
        survivor.source,
    )
    assert len(probe.of(req.training_id, "Completed")) == 1
    assert [(e.trainer_id, e.attempt) for e in probe.of(req.training_id, "Started")] == [
        (victim.trainer_id, 1),
        (survivor.trainer_id, 2),
    ]


async def test_poison_and_invalid_requests_never_crash_loop(probe, spawn):
    trainer = spawn("poison")
    await probe.wait_ready(trainer)
    dead: asyncio.Queue[bytes] = asyncio.Queue()
    connection = await aio_pika.connect(probe.url)
    try:
        channel = await connection.channel()
        parking = await channel.declare_queue(probe.topology.dead_queue, passive=True)

        async def park(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            dead.put_nowait(message.body)

        await parking.consume(park, no_ack=True)
        exchange = await channel.get_exchange(probe.topology.events_exchange)
        poison = [b"{not json", b'{"type": "TrainingRequested", "source": "api"}']
        for body in poison:
            await exchange.publish(aio_pika.Message(body), "training.requested.any")

        snapshot = nmr_request().strategy
        training = {**snapshot["model"]["training"], "optimiser": "adam"}
        bad_field = nmr_request(
            strategy={**snapshot, "model": {**snapshot["model"], "training": training}}
        )
        no_data = nmr_request()
        no_data = no_data.model_copy(update={"symbols": ["NODATA"]})
        good = nmr_request(epochs=1)
        for req in (bad_field, no_data, good):
            await probe.publish(req)

        failed_field = await probe.wait_terminal(bad_field.training_id)
        failed_data = await probe.wait_terminal(no_data.training_id)
        completed = await probe.wait_terminal(good.training_id)
    finally:
        await connection.close()

    # Dropped by the trainer, not parked: the projector's consumer parks its own copy of a bad
    # body with the reason, so it lands in ktrdr.dead once (tests/contract/test_bus_contract.py).
    # The poison was published before the good request, so the trainer has been past it.
    assert dead.empty()
    assert (failed_field.type, failed_field.retryable) == ("Failed", False)
    assert "optimiser" in failed_field.message, failed_field.message
    assert (failed_data.type, failed_data.retryable) == ("Failed", False)
    assert "NODATA" in failed_data.message, failed_data.message
    assert completed.type == "Completed"  # the trainer kept serving
    trainer.check_alive()
    # Each bad request was handled once: Failed, then acked (no attempt 2).
    for req in (bad_field, no_data):
        assert [e.attempt for e in probe.of(req.training_id, "Started")] == [1]


async def test_sigterm_finishes_within_grace_or_gives_the_request_back(probe, spawn):
    # Each next trainer boots while the previous one holds its request (saves the boot time);
    # it cannot take that request, which is unacked, until the holder gives it back.
    patient = spawn("patient", shutdown_grace_s=120)
    await probe.wait_ready(patient)
    req = nmr_request(epochs=4, early_stopping=None)
    await probe.publish(req)
    await probe.wait_for(lambda _: probe.of(req.training_id, "BatchProgress"))
    hasty = spawn("hasty", shutdown_grace_s=0)
    patient.signal(signal.SIGTERM)
    assert await patient.wait_exit() == 0
    terminal = await probe.wait_terminal(req.training_id, within_s=5)
    assert (terminal.type, terminal.attempt, terminal.source) == ("Completed", 1, patient.source)

    await probe.wait_ready(hasty)
    given_back = nmr_request(epochs=6, early_stopping=None)
    await probe.publish(given_back)
    await probe.wait_for(lambda _: probe.of(given_back.training_id, "BatchProgress"))
    heir = spawn("heir")
    hasty.signal(signal.SIGTERM)
    assert await hasty.wait_exit() == 0
    assert not [e for e in probe.of(given_back.training_id) if e.is_terminal]
    assert "SIGTERM received" in hasty.log()

    terminal = await probe.wait_terminal(given_back.training_id)
    assert (terminal.type, terminal.attempt, terminal.source) == ("Completed", 2, heir.source)
