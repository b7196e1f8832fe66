"""Coalesced acks on the real broker: a burst settles with a few frames, and every message of
it is really acked (none comes back to the next consumer)."""

from __future__ import annotations

import asyncio

import pytest

from libs.events.bus.amqp.adapter import AmqpBus
from libs.events.bus.amqp.consumers import AmqpSubscription
from libs.events.bus.port import Delivery
from tests.contract.conftest import AMQP_URL, WAIT_S
from tests.support import events as make

pytestmark = pytest.mark.integration
BURST = 300


async def test_a_released_burst_is_acked_with_few_frames_and_nothing_comes_back(
    amqp_bus: AmqpBus,
) -> None:
    queue = amqp_bus.topology.projector_queue
    tid = make.training_id()
    burst = [make.progress(tid, batch=i) for i in range(1, BURST + 1)]
    arrived: list[Delivery] = []
    all_arrived, release = asyncio.Event(), asyncio.Event()

    async def held(delivery: Delivery) -> None:  # like the projector: return after a commit
        arrived.append(delivery)
        if len(arrived) == BURST:
            all_arrived.set()
        await release.wait()

    subscription = await amqp_bus.consume(queue, held, prefetch=BURST)
    assert isinstance(subscription, AmqpSubscription)
    await amqp_bus.publish_many(burst)
    await asyncio.wait_for(all_arrived.wait(), WAIT_S)
    release.set()
    await subscription.stop(grace_s=WAIT_S)  # handlers return, their acks go out, then close
    assert 1 <= subscription.acks.frames_sent < BURST // 10

    # A message left unacked would be requeued ahead of anything published later (FIFO).
    second = AmqpBus(AMQP_URL, amqp_bus.topology, connection_name="ack-coalescing-check")
    await second.start()
    try:
        received: asyncio.Queue[Delivery] = asyncio.Queue()
        await second.consume(queue, _put_into(received), prefetch=10)
        sentinel = make.progress(tid, batch=BURST + 1)
        await amqp_bus.publish(sentinel)
        first = await asyncio.wait_for(received.get(), WAIT_S)
        assert first.event.event_id == sentinel.event_id
    finally:
        await second.close()


def _put_into(queue: asyncio.Queue[Delivery]):
    async def handler(delivery: Delivery) -> None:
        queue.put_nowait(delivery)

    return handler


async def test_a_consumer_the_broker_cancels_consumes_again(amqp_bus: AmqpBus) -> None:
    """Deleting a queue under its consumer makes the broker cancel it: the subscription
    consumes again by itself -- the robust channel re-declares the queue when it reopens --
    and receives what is then sent to the queue, without a restart."""
    import aio_pika

    from libs.events.bus.amqp.consumers import to_amqp_message

    received: asyncio.Queue[Delivery] = asyncio.Queue()
    queue = amqp_bus.topology.projector_queue
    await amqp_bus.consume(queue, _put_into(received))
    connection = await aio_pika.connect(AMQP_URL)
    try:
        await (await connection.channel()).queue_delete(queue)
        await _until_declared_again(connection, queue)
        event = make.progress(make.training_id())
        channel = await connection.channel()
        await channel.default_exchange.publish(to_amqp_message(event), routing_key=queue)
        delivery = await asyncio.wait_for(received.get(), WAIT_S)
        assert delivery.event.event_id == event.event_id
    finally:
        await connection.close()


async def _until_declared_again(connection, queue: str) -> None:
    import aiormq

    async with asyncio.timeout(WAIT_S):
        while True:
            channel = await connection.channel()  # a failed passive declare closes it
            try:
                await channel.declare_queue(queue, passive=True)
                await channel.close()
                return
            except aiormq.exceptions.ChannelNotFoundEntity:
                await asyncio.sleep(0.05)  # polling the broker: nothing to wait on instead
