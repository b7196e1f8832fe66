"""The private servers themselves: a RabbitMQ node of our own keeps a confirmed message across a
clean stop and across kill -9, and takes its own consumer_timeout; a stopped or killed node frees
its port."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aio_pika
import pytest

from tests.support.private_servers import PrivateRabbit, require_private_servers

pytestmark = pytest.mark.reliability


@pytest.fixture
def rabbit():
    require_private_servers()
    node = PrivateRabbit(consumer_timeout_ms=7000)
    node.start()
    try:
        yield node
    finally:
        node.destroy()


async def publish_confirmed(url: str, queue: str, body: bytes) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key=queue)
    finally:
        await connection.close()


async def take_one(url: str, queue: str) -> bytes:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(
            queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        async with declared.iterator() as messages:
            async for message in messages:
                async with message.process():
                    return message.body
    finally:
        await connection.close()
    raise AssertionError("queue iterator ended")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


async def test_a_private_node_keeps_confirmed_messages_across_stop_and_kill(rabbit) -> None:
    assert "{ok,7000}" in rabbit.ctl("eval", "application:get_env(rabbit, consumer_timeout).")

    await publish_confirmed(rabbit.url, "q", b"across a stop")
    await asyncio.to_thread(rabbit.stop)
    assert not port_open(rabbit.port)
    await asyncio.to_thread(rabbit.start)
    assert await asyncio.wait_for(take_one(rabbit.url, "q"), 30) == b"across a stop"

    await publish_confirmed(rabbit.url, "q", b"across a kill")
    pid = rabbit.pid()
    await asyncio.to_thread(rabbit.kill)
    assert not port_open(rabbit.port)
    assert pid is not None and not await asyncio.to_thread(Path(f"/proc/{pid}").exists)
    await asyncio.to_thread(rabbit.start)
    assert await asyncio.wait_for(take_one(rabbit.url, "q"), 30) == b"across a kill"
