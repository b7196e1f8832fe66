"""The bus port: what every adapter (in-memory, aio-pika) offers the services.

Semantics both adapters share (tests/contract proves it):

* `publish` / `publish_many` return only once the broker confirmed every message; a nack, an
  unroutable-by-design failure or a lost connection raises `PublishFailed`. A lost confirm may
  still mean the broker has the message, so callers retry and consumers dedupe by event_id.
* `consume(queue, handler)` delivers one `Delivery` at a time per handler call, each in its own
  task (the loop stays free for AMQP heartbeats). The failure policy is in
  `libs/events/bus/policy.py`: return → ack; raise → requeue (the quorum queue's delivery limit
  dead-letters it after N attempts); undecodable body → dead-lettered at once.
* `consume_control(handler)` reads the replayable control stream, from the start by default;
  `Subscription.caught_up` is set once everything published before the call has been handled.
* `tap(patterns, handler)` is a throw-away exclusive queue on the events exchange (ops tools).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from libs.events.bus.topology import Topology
from libs.events.catalog import Event

if TYPE_CHECKING:
    from libs.events.bus.dead_letters import DeadLetter


class BusError(Exception):
    """Base class of bus failures."""


class PublishFailed(BusError):
    """The broker did not confirm a message (nack, closed channel, lost connection)."""


class TopologyMismatch(BusError):
    """A queue or exchange exists on the broker with different arguments than declared."""


class HandBack(BusError):
    """Raised by a handler: give the message back to its queue (requeued, like any failure)
    because of an expected condition (shutdown, a redelivery superseding this one): logged at
    INFO, without a traceback."""


class Reject(BusError):
    """Raised by a handler: this message can never be handled (retrying cannot help).

    The bus dead-letters it at once to `ktrdr.dead`, recording `reason` on the message
    (policy.py), so whoever reads the dead letter sees the real cause."""

    def __init__(self, reason: str, *, kind: str = "rejected") -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


@dataclass(frozen=True)
class Delivery:
    """One message handed to a handler."""

    event: Event
    queue: str
    routing_key: str
    redelivered: bool
    # How many times this message was delivered before and not acked (the quorum queue's
    # x-delivery-count): 0 on the first delivery. Dead-lettered after `delivery_limit` + 1 tries.
    delivery_count: int = 0
    headers: Mapping[str, Any] = field(default_factory=dict)

    @property
    def death(self) -> Mapping[str, Any] | None:
        """The most recent x-death entry ({queue, reason, count, ...}) of a dead-lettered
        message — e.g. reason "delivery_limit" or "rejected" — or None."""
        deaths = self.headers.get("x-death")
        if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
            return deaths[0]
        return None


Handler = Callable[[Delivery], Awaitable[None]]


@dataclass(frozen=True)
class QueueStats:
    """A queue as the broker sees it now: messages ready, consumers attached."""

    queue: str
    messages: int
    consumers: int


class Subscription(ABC):
    """A running consumer. `stop()` takes no new deliveries and waits for in-flight handlers."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        # Set once the consumer has handled what existed when it started (streams); plain
        # queues have no such notion and set it at once.
        self.caught_up = asyncio.Event()

    @abstractmethod
    async def stop(self, grace_s: float | None = None) -> None:
        """Stop consuming; wait up to `grace_s` (None: forever) for in-flight handlers, then
        cancel them (their messages go back to the queue)."""

    async def sync(self) -> None:
        """Control-stream subscriptions: return once everything appended to the stream before
        this call has been handled (e.g. a trainer about to run a request makes sure a cancel
        published just before is not still on its way). Other subscriptions cannot."""
        raise NotImplementedError(f"{type(self).__name__} has no stream position to sync to")


class EventBus(ABC):
    """Publish events with confirms and consume them from the topology's queues."""

    topology: Topology

    @abstractmethod
    async def start(self) -> None:
        """Connect and declare the topology (idempotent)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop every subscription and disconnect."""

    @property
    @abstractmethod
    def is_connected(self) -> bool:
        """True while the bus can publish: started, not closed, and (AMQP) the connection is up
        rather than being re-established. For health checks; a publish may still fail."""

    @abstractmethod
    async def publish_many(self, events: Sequence[Event]) -> None:
        """Publish in order; return after the broker confirmed all; raise PublishFailed."""

    async def publish(self, event: Event) -> None:
        await self.publish_many([event])

    @abstractmethod
    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 1) -> Subscription:
        """Consume a durable queue of the topology with at most `prefetch` unacked messages."""

    @abstractmethod
    async def consume_control(
        self, handler: Handler, *, from_start: bool = True, prefetch: int = 100
    ) -> Subscription:
        """Read the control stream (cancellations, terminal events), handled one at a time in
        stream order. Handler errors are logged and skipped: a stream cannot requeue."""

    @abstractmethod
    async def tap(self, patterns: Sequence[str], handler: Handler) -> Subscription:
        """An exclusive, auto-deleted queue bound to the events exchange with `patterns`."""

    # --- operations (ktrdr trainers, ktrdr dead; the admin API) ----------------------------------
    @abstractmethod
    async def queue_stats(self, queues: Sequence[str]) -> list[QueueStats]:
        """Depth and consumers of each of the topology's `queues`."""

    @abstractmethod
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Up to `limit` messages parked in `ktrdr.dead`, oldest first, left where they are."""

    @abstractmethod
    async def take_dead_letter(self, letter_id: str, *, requeue: bool) -> DeadLetter | None:
        """Remove the dead letter `letter_id` from `ktrdr.dead` (None if there is none); with
        `requeue`, first publish it again (confirmed) to the events exchange with the routing
        key it was first published with and without the traces of its death."""

    async def __aenter__(self) -> EventBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
