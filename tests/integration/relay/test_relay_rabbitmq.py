"""The relay on the real RabbitMQ and Postgres: killed between a confirm and its cursor update,
restarted, nothing lost; and one active relay among several."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa

from libs.events import tables
from libs.events.bus.amqp.adapter import AmqpBus
from libs.events.bus.amqp.topology import delete_topology
from libs.events.bus.memory.adapter import InMemoryBus
from libs.events.bus.port import Delivery
from libs.events.bus.topology import Topology
from libs.events.relay import OutboxRelay
from libs.events.store.sql import SqlEventStore
from tests.contract.conftest import AMQP_URL
from tests.integration.relay.helpers import WAIT_S, Seen, WrappedBus
from tests.support import events as make

pytestmark = pytest.mark.integration


@pytest.fixture
async def rabbit_bus(rabbitmq_available):
    topology = Topology(prefix=f"test.{uuid.uuid4().hex[:10]}.")
    bus = AmqpBus(AMQP_URL, topology, connection_name="relay-test")
    await bus.start()
    yield bus
    await bus.close()
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    await delete_topology(await connection.channel(), topology)
    await connection.close()


@pytest.fixture
def pg_store(pg_engine) -> SqlEventStore:
    return SqlEventStore(pg_engine, channel=f"ktrdr_relay_{uuid.uuid4().hex[:8]}")


async def test_relay_killed_between_confirm_and_cursor_loses_nothing(
    pg_store: SqlEventStore, rabbit_bus: AmqpBus
) -> None:
    store = pg_store
    events = [make.cancel() for _ in range(50)]
    await store.append(events, fold=False)

    # The receiving side behaves like the projector: append what arrives, deduped by event_id.
    arrivals: list[str] = []
    expected_arrivals = len(events) + 10  # batch 3 goes out twice
    everything = asyncio.Event()

    async def projector_like(delivery: Delivery) -> None:
        result = await store.append([delivery.event], fold=False)
        arrivals.append(str(delivery.event.event_id))
        assert not result.appended  # already in the log: the append is a no-op
        if len(arrivals) == expected_arrivals:
            everything.set()

    await rabbit_bus.consume(rabbit_bus.topology.projector_queue, projector_like, prefetch=20)

    crashing = WrappedBus(rabbit_bus)
    crashing.hang_after_batches = 2  # batch 3 is confirmed, then the relay "dies"
    first = OutboxRelay(store, crashing, batch_size=10, poll_interval_s=3600)
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(crashing.hung.wait(), WAIT_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    positions = [stored.position for stored in await store.read_all()]
    assert await store.get_relay_cursor("outbox") == positions[19]  # batches 1-2 only

    second = OutboxRelay(store, rabbit_bus, batch_size=10)
    assert await second.relay_pending() == 30  # batch 3 again, then 4 and 5
    await asyncio.wait_for(everything.wait(), WAIT_S)

    assert set(arrivals) == {str(e.event_id) for e in events}  # all arrived at least once
    resent = {event_id for event_id, count in Counter(arrivals).items() if count > 1}
    assert resent == {str(e.event_id) for e in events[20:30]}  # the batch in flight at the kill
    async with store.engine.connect() as conn:
        stored_ids = (await conn.execute(sa.select(tables.events.c.event_id))).scalars().all()
    assert sorted(map(str, stored_ids)) == sorted(str(e.event_id) for e in events)  # once each


async def test_only_one_relay_per_name_publishes_at_a_time(pg_store: SqlEventStore) -> None:
    # Two relays, as in two API processes: each with its own connection to one broker.
    shared = InMemoryBus(Topology())
    buses = [WrappedBus(InMemoryBus(Topology(), shared.broker)) for _ in range(2)]
    for bus in (shared, *buses):
        await bus.start()
    seen = Seen()
    await shared.tap(["#"], seen)
    relays = [OutboxRelay(pg_store, bus, poll_interval_s=0.05) for bus in buses]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]

    def published_by(index: int) -> int:
        return sum(len(batch) for batch in buses[index].batches)

    events = [make.cancel() for _ in range(20)]
    for event in events:
        await pg_store.append([event], fold=False)
    await seen.wait_for([str(e.event_id) for e in events])
    assert sorted([published_by(0), published_by(1)]) == [0, 20]

    active = 0 if published_by(0) else 1
    relays[active].stop()
    await asyncio.wait_for(tasks[active], WAIT_S)  # releases the lease
    later = make.cancel()
    await pg_store.append([later], fold=False)
    await seen.wait_for([str(later.event_id)])  # the stand-by took over
    assert published_by(1 - active) == 1

    relays[1 - active].stop()
    await asyncio.wait_for(tasks[1 - active], WAIT_S)
    for bus in (*buses, shared):
        await bus.close()
