"""The RabbitMQ adapter (aio-pika).

One robust connection (it reconnects and restores channels, queues and consumers by itself);
one publish channel in confirm mode; one channel per subscription, so each has its own prefetch
(quorum queues refuse channel-global QoS) and a broken handler cannot take the others down.
aiormq runs every delivery in its own task, so long handlers never block AMQP heartbeats.

Publishing never retries by itself: a lost connection fails the publish with PublishFailed and
the caller (the relay, the trainer) retries once `start()`'s connection has come back — a lost
confirm may still mean the broker has the message, so consumers dedupe by event_id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, AbstractRobustConnection

from libs.events.bus.amqp.consumers import AmqpSubscription, raw_of, to_amqp_message
from libs.events.bus.amqp.control import ControlSubscription
from libs.events.bus.amqp.topology import declare_topology, delete_topology
from libs.events.bus.dead_letters import DeadLetter, dead_letter_of, fresh_headers
from libs.events.bus.messages import CONTENT_TYPE, MARKER_HEADER, MARKER_TYPE, RawMessage
from libs.events.bus.policy import DeadLettering, settle, settle_best_effort
from libs.events.bus.port import (
    EventBus,
    Handler,
    PublishFailed,
    QueueStats,
    Subscription,
    TopologyMismatch,
)
from libs.events.bus.topology import Topology
from libs.events.catalog import Event


class AmqpBus(EventBus):
    def __init__(
        self,
        url: str,
        topology: Topology | None = None,
        *,
        connection_name: str = "ktrdr",
        publish_timeout_s: float = 30.0,
        publish_window: int = 500,
    ) -> None:
        self.topology = topology or Topology()
        self._url, self.connection_name = url, connection_name
        self._publish_timeout_s, self._publish_window = publish_timeout_s, publish_window
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._subscriptions: list[AmqpSubscription] = []

    async def start(self) -> None:
        if self._exchange is not None:
            return
        if self._connection is None:
            self._connection = await aio_pika.connect_robust(
                self._url, client_properties={"connection_name": self.connection_name}
            )
        try:
            await self._declare()
            self._publisher = await self._connection.channel(publisher_confirms=True)
            self._exchange = await self._publisher.get_exchange(
                self.topology.events_exchange, ensure=False
            )
        except BaseException:  # leave nothing half-open: start() may be retried
            await self.close()
            raise

    async def _declare(self) -> None:
        assert self._connection is not None
        channel = await self._connection.channel()
        try:
            await declare_topology(channel, self.topology)
        except aiormq.exceptions.ChannelPreconditionFailed as error:
            raise TopologyMismatch(f"{error}; delete the old one or use another prefix") from error
        finally:
            if not channel.is_closed:
                await channel.close()

    def add_reconnect_callback(self, callback: Callable[[], object]) -> None:
        """Called after the robust connection came back (channels and consumers restored)."""
        assert self._connection is not None, "start() first"
        self._connection.reconnect_callbacks.add(lambda *_: callback())

    async def close(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            await subscription.stop()
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._publisher = self._exchange = None

    @property
    def is_connected(self) -> bool:
        # A robust connection is not `is_closed` while it reconnects; `connected` is the
        # event aio-pika clears on a drop and sets again once the transport is back.
        connection = self._connection
        return (
            self._exchange is not None
            and connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
        )

    async def publish_many(self, events: Sequence[Event]) -> None:
        if self._exchange is None:
            raise PublishFailed("the bus is not started (call start() first)")
        exchange, publisher = self._exchange, self._publisher
        assert publisher is not None
        try:  # while the robust connection is reconnecting, wait for it rather than fail at once
            async with asyncio.timeout(self._publish_timeout_s):
                await publisher.ready()  # type: ignore[attr-defined]
        except TimeoutError as error:
            raise PublishFailed(
                f"no broker connection for {self._publish_timeout_s}s; nothing was published"
            ) from error
        for first in range(0, len(events), self._publish_window):
            window = events[first : first + self._publish_window]
            # Pipelined: all frames go out in order (the channel lock is FIFO), then the
            # confirms are awaited together.
            results = await asyncio.gather(
                *(
                    exchange.publish(
                        to_amqp_message(event),
                        routing_key=event.routing_key,
                        mandatory=False,
                        timeout=self._publish_timeout_s,
                    )
                    for event in window
                ),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise PublishFailed(
                    f"{len(errors)} of {len(window)} messages not confirmed: {errors[0]!r}"
                ) from errors[0]

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 1) -> Subscription:
        spec = self.topology.queue(queue)
        if spec.kind == "stream":
            raise ValueError(f"{queue} is a stream; use consume_control()")
        channel, amqp_queue = await self._open(queue, prefetch)
        dead = DeadLettering(
            park=self._park,
            delivery_limit=spec.delivery_limit,
            parks_bad_bodies=self.topology.parks_bad_bodies(queue),
        )
        subscription = AmqpSubscription(channel, amqp_queue, handler, partial(settle, dead=dead))
        await subscription.start()
        return self._keep(subscription)

    async def consume_control(
        self, handler: Handler, *, from_start: bool = True, prefetch: int = 100
    ) -> Subscription:
        channel, stream = await self._open(self.topology.control_stream, prefetch)
        subscription = ControlSubscription(
            channel, stream, handler, settle_best_effort, publish_marker=self._publish_marker
        )
        await subscription.start({"x-stream-offset": "first" if from_start else "next"})
        self._keep(subscription)
        if from_start:
            await self._publish_marker(subscription.marker)
        else:
            subscription.caught_up.set()
        return subscription

    async def tap(self, patterns: Sequence[str], handler: Handler) -> Subscription:
        if not patterns:
            raise ValueError("tap needs at least one routing-key pattern")
        channel = await self._channel(100)
        # Client-named: a robust channel re-declares it after a reconnect, which the broker
        # refuses for server-named (amq.gen-*) queues.
        name = f"{self.topology.prefix}ktrdr.tap.{uuid.uuid4().hex}"
        queue = await channel.declare_queue(name, exclusive=True, auto_delete=True)
        for pattern in patterns:
            await queue.bind(self.topology.events_exchange, routing_key=pattern)
        subscription = AmqpSubscription(
            channel, queue, handler, settle_best_effort, delete_queue=True
        )
        await subscription.start()
        return self._keep(subscription)

    async def _channel(self, prefetch: int) -> AbstractChannel:
        if prefetch < 1:
            raise ValueError(f"prefetch must be >= 1, got {prefetch}")
        if self._connection is None:
            raise RuntimeError("the bus is not started (call start() first)")
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def _open(self, queue: str, prefetch: int) -> tuple[AbstractChannel, AbstractQueue]:
        # Declared (same arguments: a no-op) rather than looked up, because the robust channel
        # restores only declared queues, and their consumers, after a reconnect.
        spec = self.topology.queue(queue)
        channel = await self._channel(prefetch)
        declared = await channel.declare_queue(queue, durable=True, arguments=spec.arguments)
        return channel, declared

    def _keep(self, subscription: AmqpSubscription) -> Subscription:
        self._subscriptions.append(subscription)
        return subscription

    # --- operations --------------------------------------------------------------------------
    async def queue_stats(self, queues: Sequence[str]) -> list[QueueStats]:
        channel = await self._ops_channel()
        try:
            stats = []
            for name in queues:
                self.topology.queue(name)  # only the topology's queues
                declared = await channel.declare_queue(name, passive=True)
                result = declared.declaration_result
                stats.append(
                    QueueStats(name, result.message_count or 0, result.consumer_count or 0)
                )
            return stats
        finally:
            await channel.close()

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Taken with basic.get and never acked: closing the channel puts them all back."""
        channel = await self._ops_channel()
        try:
            queue = await channel.get_queue(self.topology.dead_queue, ensure=False)
            letters: list[DeadLetter] = []
            while len(letters) < limit:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                letters.append(dead_letter_of(raw_of(message, queue.name)))
            return letters
        finally:
            await channel.close()

    async def take_dead_letter(self, letter_id: str, *, requeue: bool) -> DeadLetter | None:
        """basic.get until the letter is found (the others go back when the channel closes);
        republish it with confirms if asked, then ack it."""
        if self._publisher is None:
            raise PublishFailed("the bus is not started")
        channel = await self._ops_channel()
        try:
            queue = await channel.get_queue(self.topology.dead_queue, ensure=False)
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                letter = dead_letter_of(raw_of(message, queue.name))
                if letter.id != letter_id:
                    continue
                if requeue:
                    exchange = await self._publisher.get_exchange(
                        self.topology.events_exchange, ensure=False
                    )
                    again = aio_pika.Message(
                        body=message.body,
                        message_id=message.message_id,
                        type=message.type,
                        content_type=message.content_type or CONTENT_TYPE,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        headers=fresh_headers(dict(message.headers or {})),
                    )
                    await exchange.publish(
                        again, routing_key=letter.routing_key, timeout=self._publish_timeout_s
                    )
                await message.ack()
                return letter
            return None
        finally:
            await channel.close()

    async def _ops_channel(self) -> AbstractChannel:
        if self._connection is None:
            raise PublishFailed("the bus is not started (call start() first)")
        return await self._connection.channel()

    async def _park(self, raw: RawMessage, reasons: dict[str, Any]) -> None:
        """A copy of `raw` on the dead exchange with the reason headers, confirmed."""
        if self._publisher is None:
            raise PublishFailed("the bus is not started")
        exchange = await self._publisher.get_exchange(self.topology.dead_exchange, ensure=False)
        headers = {k: v for k, v in raw.headers.items() if k != "x-delivery-count"}
        message = aio_pika.Message(
            body=raw.body,
            message_id=raw.message_id,
            type=raw.type,
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={**headers, **reasons},
        )
        key = self.topology.dead_letter_key(raw.queue, raw.routing_key)
        await exchange.publish(message, routing_key=key, timeout=self._publish_timeout_s)

    async def _publish_marker(self, marker: str) -> None:
        """Append a bookmark to the stream straight through the default exchange (no event
        consumer sees it); reading it back means everything before it has been handled."""
        assert self._publisher is not None
        # Right after a reconnect the request consumers may be back before this channel is:
        # wait for it, as publish_many does, rather than fail the sync (and every redelivery
        # handed back on that failure would burn its delivery limit in milliseconds).
        async with asyncio.timeout(self._publish_timeout_s):
            await self._publisher.ready()  # type: ignore[attr-defined]
        message = aio_pika.Message(body=b"{}", type=MARKER_TYPE, headers={MARKER_HEADER: marker})
        await self._publisher.default_exchange.publish(
            message, routing_key=self.topology.control_stream, timeout=self._publish_timeout_s
        )

    async def delete_topology(self) -> None:
        """Delete every queue and exchange of the topology (tests, ops resets)."""
        assert self._connection is not None
        channel = await self._connection.channel()
        await delete_topology(channel, self.topology)
        await channel.close()
