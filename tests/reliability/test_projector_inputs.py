"""What reaches the projector over the bus besides a well-behaved trainer's events: duplicates,
events out of order, and poison of every kind (bodies that are no event, events for trainings
the log does not know, API events that did not come from the log). Nothing is stored twice,
nothing refused is stored or lost (it is parked in ktrdr.dead with its reason), and the
projector goes on with the next message."""

from __future__ import annotations

import json
import random
import uuid

import aio_pika
import pytest

from libs.events.bus.amqp.adapter import AmqpBus
from libs.events.bus.policy import REASON_HEADER
from libs.events.catalog import Event
from tests.reliability.rig import Rig
from tests.support.events import TrainingScript

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


async def _known_idle_training(rig: Rig, client) -> str:
    """A training the API accepted that no trainer will take (no trainer serves `mps`): the test
    plays its trainer over the bus."""
    return await rig.submit(client, epochs=2, device="mps")


def _run_of(training_id: str) -> list[Event]:
    script = TrainingScript(training_id, strategy="e2e_tiny", timeframe="1h")
    events: list[Event] = [script.started(), script.phase("training", 8)]
    for epoch in (1, 2):
        events += [script.batch(epoch, b, total_epochs=2, total_batches=4) for b in range(1, 5)]
        events.append(script.epoch_completed(epoch, 0.5 / epoch, total_epochs=2))
    return [*events, script.completed()]


async def test_duplicates_and_out_of_order_deliveries_are_stored_once(rig: Rig) -> None:
    async with rig.client() as client:
        training_id = await _known_idle_training(rig, client)
        run = _run_of(training_id)
        *body, completed = run
        shuffled = list(body)
        random.Random(15).shuffle(shuffled)  # a fixed seed: the same disorder on every run
        # Every event twice, the copies out of order; the Completed once early and once last.
        deliveries = [*body[:3], completed, *shuffled, *body[3:], completed]
        bus = AmqpBus(rig.rabbit.url, rig.topology, connection_name="rel-duplicates")
        await bus.start()
        try:
            for event in deliveries:
                await bus.publish(event)
        finally:
            await bus.close()
        await rig.until_view(
            client, training_id, lambda v: v["status"] == "completed", what="completed"
        )
        logged = (await client.get(f"/api/v1/trainings/{training_id}/events")).json()["events"]
    ids = [e["event_id"] for e in logged if e["source"] != "api"]
    assert sorted(ids) == sorted(str(e.event_id) for e in run), "each event stored exactly once"
    await rig.check()


def _poison(kind: str) -> tuple[str, bytes]:
    started = {
        "type": "Started",
        "event_id": str(uuid.uuid4()),
        "training_id": "whatever",
        "schema_version": 1,
    }
    bodies = {
        "not_json": b"{this is not json",
        "unknown_type": json.dumps({**started, "type": "NoSuchEvent"}).encode(),
        "wrong_schema": json.dumps(started).encode(),  # a Started without its fields
        "huge_body": b"[" + b"0," * (4 * 1024 * 1024) + b"0]",  # 8 MiB, not an event either
        "empty": b"",
    }
    return f"poison-{kind}-{uuid.uuid4().hex[:8]}", bodies[kind]


def _misplaced_events(known_training: str) -> dict[str, Event]:
    """Well-formed events the projector must still refuse: a trainer's event for a training
    the log does not know (a phantom), an API event that did not come from the log, and a
    trainer's event type claiming the API as its source. (No TrainingRequested: a real trainer
    would take it from its queue.)"""
    phantom = TrainingScript(f"phantom-{uuid.uuid4().hex[:8]}")
    known = TrainingScript(known_training, strategy="e2e_tiny", timeframe="1h")
    return {
        "phantom_started": phantom.started(),
        "phantom_completed": phantom.completed(),
        "api_cancel_over_the_bus": phantom.cancel_requested(),
        "started_from_the_api": known.started().model_copy(update={"source": "api"}),
    }


async def test_poison_messages_are_dead_lettered_with_a_reason_and_the_projector_goes_on(
    rig: Rig,
) -> None:
    kinds = ["not_json", "unknown_type", "wrong_schema", "huge_body", "empty"]
    poison = dict(_poison(kind) for kind in kinds)
    async with rig.client() as client:
        training_id = await _known_idle_training(rig, client)
        misplaced = _misplaced_events(training_id)
        rig.expect.refused |= {str(e.event_id) for e in misplaced.values()}
        connection = await aio_pika.connect(rig.rabbit.url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(rig.topology.events_exchange, ensure=False)
            for message_id, body in poison.items():
                message = aio_pika.Message(
                    body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                )
                await exchange.publish(message, routing_key="training.started")
        finally:
            await connection.close()
        bus = AmqpBus(rig.rabbit.url, rig.topology, connection_name="rel-poison")
        await bus.start()
        try:
            for event in misplaced.values():
                await bus.publish(event)
            # Good events after the bad ones: folded, so the projector went past every one.
            script = TrainingScript(training_id, strategy="e2e_tiny", timeframe="1h")
            await bus.publish(script.started())
            await bus.publish(script.cancelled())
        finally:
            await bus.close()
        await rig.until_view(
            client, training_id, lambda v: v["status"] == "cancelled", what="cancelled"
        )
        logged = (await client.get(f"/api/v1/trainings/{training_id}/events")).json()["events"]
    wanted = set(poison) | {str(e.event_id) for e in misplaced.values()}
    parked = await _take_dead_letters(rig, wanted)
    assert set(parked) == wanted, f"not dead-lettered: {wanted - set(parked)}"
    assert all(parked.values()), f"dead letters without a reason: {parked}"
    assert str(misplaced["started_from_the_api"].event_id) not in {e["event_id"] for e in logged}
    await rig.check()  # the phantoms made no rows: every training is still terminal


async def _take_dead_letters(rig: Rig, wanted: set[str]) -> dict[str, str]:
    """message id → recorded reason of each of `wanted` found in ktrdr.dead (taken off it;
    others are put back)."""
    found: dict[str, str] = {}
    connection = await aio_pika.connect(rig.rabbit.url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(rig.topology.dead_queue, ensure=False)
        while (message := await queue.get(no_ack=False, fail=False, timeout=10)) is not None:
            if message.message_id in wanted:
                found[message.message_id] = str((message.headers or {}).get(REASON_HEADER, ""))
                await message.ack()
    finally:
        await connection.close()
    return found
