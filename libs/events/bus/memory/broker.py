"""An in-process emulation of the RabbitMQ features the topology uses.

Topic routing with `*` / `#`, quorum queues (competing consumers, single active consumer,
x-delivery-count, x-delivery-limit, dead-lettering with x-death headers, requeue to the front as
RabbitMQ 3.10 does), append-only streams read from any offset, and throw-away exclusive queues.
One broker may serve several `InMemoryBus` objects, like several connections to one RabbitMQ.
Everything runs on the event loop; nothing here is thread-safe (publish from the loop).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from libs.events.bus.messages import RawMessage
from libs.events.bus.policy import Outcome
from libs.events.bus.port import TopologyMismatch
from libs.events.bus.topology import QueueSpec, Topology, topic_matches

log = logging.getLogger("ktrdr.bus.memory")


@dataclass
class StoredMessage:
    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    type: str | None = None
    message_id: str | None = None
    delivery_count: int = 0
    redelivered: bool = False

    def raw(self, queue: str, extra_headers: dict[str, Any] | None = None) -> RawMessage:
        headers = dict(self.headers)
        if self.delivery_count:
            headers["x-delivery-count"] = self.delivery_count
        headers.update(extra_headers or {})
        return RawMessage(
            queue=queue,
            routing_key=self.routing_key,
            body=self.body,
            redelivered=self.redelivered,
            headers=headers,
            type=self.type,
            message_id=self.message_id,
        )


class QueueReader(Protocol):
    """A consumer of a quorum or exclusive queue, as the queue dispatches to it."""

    def has_capacity(self) -> bool: ...

    def deliver(self, message: StoredMessage) -> None: ...


class StreamReader(Protocol):
    """A stream reader: told when the stream grows, it reads the log at its own offset."""

    def wake(self) -> None: ...


class MemoryQueue:
    def __init__(self, spec: QueueSpec) -> None:
        self.spec = spec
        self.ready: deque[StoredMessage] = deque()  # quorum / exclusive queues
        self.log: list[StoredMessage] = []  # streams
        self.consumers: list[QueueReader] = []
        self.stream_readers: list[StreamReader] = []
        self.turn = 0  # round-robin position among competing consumers

    @property
    def is_stream(self) -> bool:
        return self.spec.kind == "stream"

    def put(self, message: StoredMessage) -> None:
        if self.is_stream:
            self.log.append(message)
            for reader in self.stream_readers:
                reader.wake()
        else:
            self.ready.append(message)
            self.dispatch()

    def dispatch(self) -> None:
        """Hand ready messages to consumers with spare prefetch (only the first one under
        single-active-consumer), round-robin otherwise."""
        while self.ready and self.consumers:
            eligible = self.consumers[:1] if self.spec.single_active else self.consumers
            count = len(eligible)
            chosen = None
            for step in range(count):
                candidate = eligible[(self.turn + step) % count]
                if candidate.has_capacity():
                    chosen = candidate
                    self.turn = (self.turn + step + 1) % count
                    break
            if chosen is None:
                return
            chosen.deliver(self.ready.popleft())


class InMemoryBroker:
    def __init__(self) -> None:
        self.exchanges: dict[str, str] = {}
        self.bindings: list[tuple[str, str, str]] = []  # (exchange, pattern, queue)
        self.queues: dict[str, MemoryQueue] = {}

    # --- declaration ---------------------------------------------------------------------------
    def declare(self, topology: Topology) -> None:
        for exchange in topology.exchanges():
            known = self.exchanges.setdefault(exchange.name, exchange.kind)
            if known != exchange.kind:
                raise TopologyMismatch(f"exchange {exchange.name} exists as {known}")
        for spec in topology.queues():
            self.declare_queue(spec)

    def declare_queue(self, spec: QueueSpec) -> MemoryQueue:
        queue = self.queues.get(spec.name)
        if queue is None:
            queue = self.queues[spec.name] = MemoryQueue(spec)
        elif queue.spec.arguments != spec.arguments:
            raise TopologyMismatch(
                f"queue {spec.name} exists with arguments {queue.spec.arguments}, "
                f"declared with {spec.arguments}"
            )
        for binding in spec.bindings:
            triple = (binding.exchange, binding.routing_key, spec.name)
            if triple not in self.bindings:
                self.bindings.append(triple)
        return queue

    def delete_queue(self, name: str) -> None:
        self.queues.pop(name, None)
        self.bindings = [b for b in self.bindings if b[2] != name]

    def queue(self, name: str) -> MemoryQueue:
        try:
            return self.queues[name]
        except KeyError:
            raise KeyError(f"no queue {name!r}; declared: {', '.join(self.queues)}") from None

    # --- routing -------------------------------------------------------------------------------
    def publish(self, message: StoredMessage) -> list[str]:
        """Route to every matching queue (one copy each); unroutable messages are dropped."""
        if message.exchange == "":  # the default exchange routes by queue name
            targets = [message.routing_key] if message.routing_key in self.queues else []
        else:
            kind = self.exchanges.get(message.exchange)
            if kind is None:
                raise KeyError(f"no exchange {message.exchange!r}")
            targets = []
            for exchange, pattern, queue in self.bindings:
                matches = kind == "fanout" or topic_matches(pattern, message.routing_key)
                if exchange == message.exchange and matches and queue not in targets:
                    targets.append(queue)
        for name in targets:
            self.queues[name].put(replace(message, headers=dict(message.headers)))
        return targets

    def inject(self, exchange: str, routing_key: str, body: bytes, **props: Any) -> list[str]:
        """Publish raw bytes (tests: poison messages)."""
        return self.publish(StoredMessage(exchange, routing_key, body, **props))

    def ready(self, queue: str) -> list[RawMessage]:
        """The messages waiting in a queue (or all of a stream), for inspection."""
        q = self.queue(queue)
        return [m.raw(queue) for m in (q.log if q.is_stream else q.ready)]

    # --- settling ------------------------------------------------------------------------------
    def settle(self, queue: MemoryQueue, message: StoredMessage, outcome: Outcome) -> None:
        if outcome is Outcome.REQUEUE:
            message.delivery_count += 1
            message.redelivered = True
            limit = queue.spec.delivery_limit
            if limit is not None and message.delivery_count > limit:
                self.dead_letter(queue, message, "delivery_limit")
            else:
                queue.ready.appendleft(message)
        elif outcome is Outcome.DEAD_LETTER:
            self.dead_letter(queue, message, "rejected")
        queue.dispatch()

    def dead_letter(self, queue: MemoryQueue, message: StoredMessage, reason: str) -> None:
        arguments = queue.spec.arguments
        exchange = arguments.get("x-dead-letter-exchange")
        if exchange is None:
            log.warning("dropping %s from %s: no dead-letter exchange", reason, queue.spec.name)
            return
        death = {
            "count": 1,
            "reason": reason,
            "queue": queue.spec.name,
            "time": datetime.now(UTC),
            "exchange": message.exchange,
            "routing-keys": [message.routing_key],
        }
        headers = {k: v for k, v in message.headers.items() if k != "x-delivery-count"}
        headers["x-death"] = [death, *headers.get("x-death", [])]
        headers.setdefault("x-first-death-queue", queue.spec.name)
        headers.setdefault("x-first-death-reason", reason)
        headers.setdefault("x-first-death-exchange", message.exchange)
        routing_key = arguments.get("x-dead-letter-routing-key", message.routing_key)
        self.publish(
            replace(
                message,
                exchange=exchange,
                routing_key=routing_key,
                headers=headers,
                delivery_count=0,
                redelivered=False,
            )
        )
