"""The broker drops our connection: consumers come back by themselves, publishing resumes.

Uses `rabbitmqctl` to close the connection from the broker side (skips where it is missing,
e.g. a broker in another container)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from libs.events.bus.amqp.adapter import AmqpBus
from libs.events.bus.port import Delivery
from tests.contract.conftest import AMQP_URL
from tests.support import events as make

pytestmark = pytest.mark.integration


def close_connections_named(name: str) -> int:
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    pids = [line.split("\t")[0] for line in listing.splitlines() if f'"{name}"' in line]
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "-q", "close_connection", pid, "test: simulated broker drop"],
            capture_output=True,
            timeout=60,
            check=True,
        )
    return len(pids)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_consumers_and_publishing_survive_a_dropped_connection(amqp_bus: AmqpBus) -> None:
    received: asyncio.Queue[Delivery] = asyncio.Queue()

    async def handler(delivery: Delivery) -> None:
        received.put_nowait(delivery)

    queue = amqp_bus.topology.trainer_queue("cpu")
    await amqp_bus.consume(queue, handler)
    reconnected = asyncio.Event()
    amqp_bus.add_reconnect_callback(reconnected.set)

    assert await asyncio.to_thread(close_connections_named, amqp_bus.connection_name) == 1
    await asyncio.wait_for(reconnected.wait(), 30)
    assert amqp_bus.is_connected  # what /readyz reports

    other = AmqpBus(AMQP_URL, amqp_bus.topology, connection_name="reconnect-publisher")
    await other.start()
    try:
        from_other = make.requested("cpu")
        await other.publish(from_other)
        assert (await asyncio.wait_for(received.get(), 10)).event == from_other
    finally:
        await other.close()
    from_self = make.requested("cpu")
    await amqp_bus.publish(from_self)  # the publish channel came back too
    assert (await asyncio.wait_for(received.get(), 10)).event == from_self
