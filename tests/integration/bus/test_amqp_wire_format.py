"""Any AMQP client can read the bus: a bare aiormq consumer, no project code on the receiving
side, decodes type, headers and the JSON body by hand."""

from __future__ import annotations

import asyncio
import json

import aiormq
import pytest

from libs.events.bus.amqp.adapter import AmqpBus
from tests.contract.conftest import AMQP_URL
from tests.support import events as make

pytestmark = pytest.mark.integration


async def test_a_plain_amqp_consumer_reads_an_event_without_project_code(
    amqp_bus: AmqpBus,
) -> None:
    connection = await aiormq.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        declared = await channel.queue_declare(exclusive=True, auto_delete=True)
        await channel.queue_bind(
            declared.queue, amqp_bus.topology.events_exchange, routing_key="training.#"
        )
        received: asyncio.Queue = asyncio.Queue()

        async def on_message(message) -> None:
            received.put_nowait(message)

        await channel.basic_consume(declared.queue, on_message, no_ack=True)
        event = make.requested("cuda")
        await amqp_bus.publish(event)
        message = await asyncio.wait_for(received.get(), 10)
    finally:
        await connection.close()

    properties = message.header.properties
    assert message.delivery.routing_key == "training.requested.cuda"
    assert properties.message_id == str(event.event_id)
    assert properties.message_type == "TrainingRequested"
    assert properties.content_type == "application/json"
    assert properties.delivery_mode == 2  # persistent
    assert properties.headers["training_id"] == event.training_id
    assert properties.headers["tenant"] == "default"
    assert properties.headers["schema_version"] == 1
    body = json.loads(message.body)
    assert body["event_id"] == str(event.event_id)
    assert body["type"] == "TrainingRequested"
    assert body["training_id"] == event.training_id
    assert body["device"] == "cuda"
    assert body["symbols"] == ["EURUSD"]


async def test_a_topology_declared_with_other_arguments_is_refused_clearly(
    amqp_bus: AmqpBus,
) -> None:
    from dataclasses import replace

    from libs.events.bus.port import PublishFailed, TopologyMismatch

    other = AmqpBus(AMQP_URL, replace(amqp_bus.topology, delivery_limit=1))
    with pytest.raises(TopologyMismatch, match="x-delivery-limit"):
        await other.start()
    with pytest.raises(PublishFailed, match="not started"):  # nothing half-open is left
        await other.publish(make.cancel())
