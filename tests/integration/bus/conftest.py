"""A started AmqpBus on a uniquely prefixed topology, deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from libs.events.bus.amqp.adapter import AmqpBus
from libs.events.bus.amqp.topology import delete_topology
from libs.events.bus.topology import Topology
from tests.contract.conftest import AMQP_URL


@pytest.fixture
def topology() -> Topology:
    return Topology(prefix=f"test.{uuid.uuid4().hex[:10]}.")


@pytest.fixture
async def amqp_bus(rabbitmq_available, topology: Topology) -> AsyncIterator[AmqpBus]:
    import aio_pika

    bus = AmqpBus(AMQP_URL, topology, connection_name=f"ktrdr-test-{uuid.uuid4().hex[:8]}")
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()
        connection = await aio_pika.connect(AMQP_URL)
        await delete_topology(await connection.channel(), topology)
        await connection.close()
