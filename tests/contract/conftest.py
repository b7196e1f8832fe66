"""The contract suites run every test against each adapter of a port: the bus (`harness`) and
the event store (`store`: in memory, SQL on SQLite, SQL on the real Postgres).

A `Harness` gives a test its bus (started, with a unique name prefix and delivery limit 2), a
second connection, raw access for poison messages, a raw view of the dead-letter parking lot
and queue depths. The RabbitMQ harness deletes its topology afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.events.bus.memory.adapter import InMemoryBus
from libs.events.bus.memory.broker import StoredMessage
from libs.events.bus.messages import RawMessage
from libs.events.bus.port import EventBus
from libs.events.bus.topology import Topology
from libs.events.notify.inprocess import InProcessNotifier
from libs.events.store.memory import InMemoryEventStore
from libs.events.store.port import EventStore
from libs.events.store.sql import SqlEventStore
from tests.conftest import RABBIT_HOST, RABBIT_PORT
from tests.support.postgres import migrated_postgres, migrated_sqlite

AMQP_URL = f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/"
WAIT_S = 10.0


class Harness:
    def __init__(self, bus: EventBus, topology: Topology) -> None:
        self.bus, self.topology = bus, topology
        self.dead: asyncio.Queue[RawMessage] = asyncio.Queue()  # the parking lot, raw
        self._buses: list[EventBus] = []

    def new_bus(self) -> EventBus:
        """Another, unstarted connection to the same broker and topology."""
        raise NotImplementedError

    async def second_bus(self) -> EventBus:
        bus = self.new_bus()
        await bus.start()
        self._buses.append(bus)
        return bus

    async def inject(self, routing_key: str, body: bytes, type: str | None = None) -> None:
        raise NotImplementedError

    async def depth(self, queue: str) -> int:
        raise NotImplementedError

    async def release_dead_queue(self) -> None:
        """Stop draining ktrdr.dead into `self.dead`: dead letters stay parked (ops tests)."""
        raise NotImplementedError

    async def next_dead(self) -> RawMessage:
        return await asyncio.wait_for(self.dead.get(), WAIT_S)


class MemoryHarness(Harness):
    def __init__(self, topology: Topology) -> None:
        super().__init__(InMemoryBus(topology), topology)
        self.memory: InMemoryBus = self.bus  # type: ignore[assignment]

    async def start(self) -> None:
        await self.bus.start()
        dead_queue = self.memory.broker.queue(self.topology.dead_queue)
        dead_queue.consumers.append(_RawSink(self.dead, self.topology.dead_queue))

    def new_bus(self) -> EventBus:
        return InMemoryBus(self.topology, self.memory.broker)

    async def release_dead_queue(self) -> None:
        dead_queue = self.memory.broker.queue(self.topology.dead_queue)
        dead_queue.consumers[:] = [c for c in dead_queue.consumers if not isinstance(c, _RawSink)]

    async def inject(self, routing_key: str, body: bytes, type: str | None = None) -> None:
        message = StoredMessage(self.topology.events_exchange, routing_key, body, type=type)
        self.memory.broker.publish(message)

    async def depth(self, queue: str) -> int:
        return len(self.memory.broker.ready(queue))


class _RawSink:
    """Duck-types a memory consumer: takes everything, acks at once."""

    def __init__(self, sink: asyncio.Queue[RawMessage], queue: str) -> None:
        self.sink, self.queue = sink, queue

    def has_capacity(self) -> bool:
        return True

    def deliver(self, message: StoredMessage) -> None:
        self.sink.put_nowait(message.raw(self.queue))


class AmqpHarness(Harness):
    def __init__(self, topology: Topology) -> None:
        from libs.events.bus.amqp.adapter import AmqpBus

        super().__init__(AmqpBus(AMQP_URL, topology, connection_name="contract"), topology)
        self._raw: Any = None

    async def start(self) -> None:
        import aio_pika

        from libs.events.bus.amqp.consumers import raw_of

        await self.bus.start()
        self._raw = await aio_pika.connect(AMQP_URL)
        channel = await self._raw.channel(publisher_confirms=True)
        self._exchange = await channel.get_exchange(self.topology.events_exchange)
        dead = await channel.get_queue(self.topology.dead_queue)

        async def to_sink(message: Any) -> None:
            self.dead.put_nowait(raw_of(message, dead.name))

        self._dead_consumer = (dead, await dead.consume(to_sink, no_ack=True))

    def new_bus(self) -> EventBus:
        from libs.events.bus.amqp.adapter import AmqpBus

        return AmqpBus(AMQP_URL, self.topology, connection_name="contract-2")

    async def release_dead_queue(self) -> None:
        if self._dead_consumer is not None:
            dead_queue, tag = self._dead_consumer
            await dead_queue.cancel(tag)
            self._dead_consumer = None

    async def inject(self, routing_key: str, body: bytes, type: str | None = None) -> None:
        import aio_pika

        await self._exchange.publish(aio_pika.Message(body, type=type), routing_key=routing_key)

    async def depth(self, queue: str) -> int:
        channel = await self._raw.channel()
        declared = await channel.declare_queue(queue, passive=True)
        await channel.close()
        return declared.declaration_result.message_count

    async def close(self) -> None:
        from libs.events.bus.amqp.topology import delete_topology

        for bus in [*self._buses, self.bus]:
            await bus.close()
        await self.release_dead_queue()  # before the queue goes, so the broker cancels nothing
        await delete_topology(await self._raw.channel(), self.topology)
        await self._raw.close()


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.integration)])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    topology = Topology(prefix=f"test.{uuid.uuid4().hex[:10]}.", delivery_limit=2)
    if request.param == "memory":
        memory = MemoryHarness(topology)
        await memory.start()
        yield memory
        for bus in [*memory._buses, memory.bus]:
            await bus.close()
        return
    request.getfixturevalue("rabbitmq_available")
    amqp = AmqpHarness(topology)
    await amqp.start()
    try:
        yield amqp
    finally:
        await amqp.close()


@pytest.fixture
def notifier() -> InProcessNotifier:
    return InProcessNotifier()


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
)
async def store(
    request: pytest.FixtureRequest, tmp_path: Any, notifier: InProcessNotifier
) -> AsyncIterator[EventStore]:
    if request.param == "memory":
        yield InMemoryEventStore(notifier=notifier)
        return
    # A per-test channel keeps parallel Postgres tests from waking each other.
    channel = f"ktrdr_test_{uuid.uuid4().hex[:8]}"
    if request.param == "sqlite":
        async with migrated_sqlite(tmp_path / "ktrdr.db") as engine:
            yield SqlEventStore(engine, notifier=notifier, channel=channel)
        return
    request.getfixturevalue("postgres_available")
    # Room for the contract tests that run several appends at once.
    async with migrated_postgres(pool_size=12) as engine:
        yield SqlEventStore(engine, notifier=notifier, channel=channel)
