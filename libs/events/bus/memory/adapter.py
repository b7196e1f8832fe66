"""The in-process bus adapter: `ktrdr up`'s default and the fast half of the contract tests.

Messages go through the same encoding as on RabbitMQ (JSON body, headers), so a handler sees
exactly what it would see from the broker, poison bodies included.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from libs.events.bus.dead_letters import DeadLetter, dead_letter_of, fresh_headers
from libs.events.bus.memory.broker import InMemoryBroker, MemoryQueue, StoredMessage
from libs.events.bus.messages import RawMessage, outgoing
from libs.events.bus.policy import DeadLettering, Outcome, drain, settle, settle_best_effort
from libs.events.bus.port import EventBus, Handler, PublishFailed, QueueStats, Subscription
from libs.events.bus.topology import BindingSpec, QueueSpec, Topology
from libs.events.catalog import Event


class QueueConsumer(Subscription):
    """A consumer of a quorum (or tap) queue: up to `prefetch` handlers in flight."""

    def __init__(
        self,
        broker: InMemoryBroker,
        queue: MemoryQueue,
        handler: Handler,
        prefetch: int,
        *,
        best_effort: bool = False,
        dead: DeadLettering | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(queue.spec.name)
        self.caught_up.set()
        self._broker, self._queue, self._handler = broker, queue, handler
        self._prefetch = prefetch
        self._settle = settle_best_effort if best_effort else partial(settle, dead=dead)
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_stop = on_stop

    def has_capacity(self) -> bool:
        return len(self._tasks) < self._prefetch

    def deliver(self, message: StoredMessage) -> None:
        task = asyncio.get_running_loop().create_task(self._run(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, message: StoredMessage) -> None:
        outcome = Outcome.REQUEUE  # a cancelled handler's message goes back, like a closed channel
        try:
            outcome = await self._settle(message.raw(self.queue), self._handler)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)
            self._broker.settle(self._queue, message, outcome)

    async def stop(self, grace_s: float | None = None) -> None:
        if self in self._queue.consumers:
            self._queue.consumers.remove(self)
            self._queue.dispatch()  # under single-active-consumer the next one takes over
        await drain(self._tasks, grace_s)
        if self._on_stop is not None:
            self._on_stop()


class StreamConsumer(Subscription):
    """Reads a stream from an offset, one message at a time, in order."""

    def __init__(self, queue: MemoryQueue, handler: Handler, from_start: bool) -> None:
        super().__init__(queue.spec.name)
        self._queue, self._handler = queue, handler
        self._offset = 0 if from_start else len(queue.log)
        self._target = len(queue.log)  # caught up once everything present now is handled
        if self._offset >= self._target:
            self.caught_up.set()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._syncs: list[tuple[int, asyncio.Future[None]]] = []  # (target offset, waiter)
        queue.stream_readers.append(self)
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def sync(self) -> None:
        if self._stopping:
            raise RuntimeError(f"{self.queue}: reader stopped")
        target = len(self._queue.log)
        if self._offset >= target:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._syncs.append((target, waiter))
        await waiter

    def wake(self) -> None:
        self._wakeup.set()

    async def _pump(self) -> None:
        while not self._stopping:
            if self._offset >= self._target:
                self.caught_up.set()
            if self._offset >= len(self._queue.log):
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            message = self._queue.log[self._offset]
            raw = message.raw(self.queue, {"x-stream-offset": self._offset})
            await settle_best_effort(raw, self._handler)
            self._offset += 1
            if self._syncs:
                for target, waiter in [w for w in self._syncs if w[0] <= self._offset]:
                    self._syncs.remove((target, waiter))
                    if not waiter.done():
                        waiter.set_result(None)

    async def stop(self, grace_s: float | None = None) -> None:
        if self in self._queue.stream_readers:
            self._queue.stream_readers.remove(self)
        self._stopping = True
        self._wakeup.set()
        await drain({self._task}, grace_s)
        for _, waiter in self._syncs:
            if not waiter.done():
                waiter.set_exception(RuntimeError(f"{self.queue}: reader stopped before sync"))
        self._syncs.clear()


class InMemoryBus(EventBus):
    def __init__(self, topology: Topology | None = None, broker: InMemoryBroker | None = None):
        self.topology = topology or Topology()
        self.broker = broker or InMemoryBroker()
        self._subscriptions: list[Subscription] = []
        self._started = False

    async def start(self) -> None:
        self.broker.declare(self.topology)
        self._started = True

    async def close(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            await subscription.stop()
        self._started = False

    @property
    def is_connected(self) -> bool:
        return self._started

    async def publish_many(self, events: Sequence[Event]) -> None:
        if not self._started:
            raise PublishFailed("the bus is not started (call start() first)")
        for event in events:
            message = outgoing(event)
            self.broker.publish(
                StoredMessage(
                    exchange=self.topology.events_exchange,
                    routing_key=message.routing_key,
                    body=message.body,
                    headers=dict(message.headers),
                    type=message.type,
                    message_id=message.message_id,
                )
            )

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 1) -> Subscription:
        spec = self.topology.queue(queue)  # only queues of the topology; raises with the list
        if spec.kind == "stream":
            raise ValueError(f"{queue} is a stream; use consume_control()")
        _check_prefetch(prefetch)
        target = self.broker.queue(queue)
        dead = DeadLettering(
            park=self._park,
            delivery_limit=spec.delivery_limit,
            parks_bad_bodies=self.topology.parks_bad_bodies(queue),
        )
        consumer = QueueConsumer(self.broker, target, handler, prefetch, dead=dead)
        return self._attach(target, consumer)

    async def consume_control(
        self, handler: Handler, *, from_start: bool = True, prefetch: int = 100
    ) -> Subscription:
        _check_prefetch(prefetch)
        stream = self.broker.queue(self.topology.control_stream)
        subscription = StreamConsumer(stream, handler, from_start)
        self._subscriptions.append(subscription)
        return subscription

    async def tap(self, patterns: Sequence[str], handler: Handler) -> Subscription:
        if not patterns:
            raise ValueError("tap needs at least one routing-key pattern")
        name = f"{self.topology.prefix}tap.{uuid.uuid4().hex}"
        bindings = tuple(BindingSpec(self.topology.events_exchange, p) for p in patterns)
        queue = self.broker.declare_queue(QueueSpec(name, "quorum", {}, bindings))
        consumer = QueueConsumer(
            self.broker,
            queue,
            handler,
            100,
            best_effort=True,
            on_stop=lambda: self.broker.delete_queue(name),
        )
        return self._attach(queue, consumer)

    async def queue_stats(self, queues: Sequence[str]) -> list[QueueStats]:
        stats = []
        for name in queues:
            queue = self.broker.queue(name)
            stats.append(QueueStats(name, len(queue.ready), len(queue.consumers)))
        return stats

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        dead = self.topology.dead_queue
        ready = list(self.broker.queue(dead).ready)[:limit]
        return [dead_letter_of(message.raw(dead)) for message in ready]

    async def take_dead_letter(self, letter_id: str, *, requeue: bool) -> DeadLetter | None:
        dead = self.topology.dead_queue
        queue = self.broker.queue(dead)
        for message in list(queue.ready):
            letter = dead_letter_of(message.raw(dead))
            if letter.id != letter_id:
                continue
            if requeue:
                self.broker.publish(
                    StoredMessage(
                        self.topology.events_exchange,
                        letter.routing_key,
                        message.body,
                        headers=fresh_headers(message.headers),
                        type=message.type,
                        message_id=message.message_id,
                    )
                )
            queue.ready.remove(message)
            return letter
        return None

    async def _park(self, raw: RawMessage, reasons: dict[str, Any]) -> None:
        if not self._started:
            raise PublishFailed("the bus is not started")
        headers = {k: v for k, v in raw.headers.items() if k != "x-delivery-count"}
        self.broker.publish(
            StoredMessage(
                self.topology.dead_exchange,
                self.topology.dead_letter_key(raw.queue, raw.routing_key),
                raw.body,
                headers={**headers, **reasons},
                type=raw.type,
                message_id=raw.message_id,
            )
        )

    def _attach(self, queue: MemoryQueue, consumer: QueueConsumer) -> Subscription:
        queue.consumers.append(consumer)
        self._subscriptions.append(consumer)
        queue.dispatch()
        return consumer


def _check_prefetch(prefetch: int) -> None:
    if prefetch < 1:
        raise ValueError(f"prefetch must be >= 1, got {prefetch}")
