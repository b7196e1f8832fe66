"""aio-pika message mapping and subscriptions (one channel each, see amqp.py).

A handler's outcome is settled through the subscription's AckCoalescer (acks.py): the
ack goes out on the next loop iteration, coalesced with the others settled meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aiormq.abc import DeliveredMessage

from libs.events.bus.amqp.acks import CLOSED_ERRORS, AckCoalescer
from libs.events.bus.messages import RawMessage, outgoing
from libs.events.bus.policy import Outcome, drain
from libs.events.bus.port import Handler, Subscription
from libs.events.catalog import Event

log = logging.getLogger("ktrdr.bus.amqp")
Settler = Callable[[RawMessage, Handler], Any]


def to_amqp_message(event: Event) -> aio_pika.Message:
    message = outgoing(event)
    return aio_pika.Message(
        body=message.body,
        message_id=message.message_id,
        type=message.type,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=message.headers,
        correlation_id=message.correlation_id,
        app_id=message.app_id,
        timestamp=event.occurred_at,
    )


def raw_of_delivered(message: DeliveredMessage, queue: str) -> RawMessage:
    """The adapter-neutral view of an aiormq delivery (what subscriptions decode)."""
    delivery, properties = message.delivery, message.header.properties
    return RawMessage(
        queue=queue,
        routing_key=delivery.routing_key or "",  # type: ignore[union-attr]
        body=message.body,
        redelivered=bool(delivery.redelivered),  # type: ignore[union-attr]
        headers=properties.headers or {},  # a fresh dict per message already
        type=properties.message_type,
        message_id=properties.message_id,
    )


def raw_of(message: AbstractIncomingMessage, queue: str) -> RawMessage:
    """The same for an aio-pika message (ops tools and tests consuming through aio-pika)."""
    return RawMessage(
        queue=queue,
        routing_key=message.routing_key or "",
        body=message.body,
        redelivered=bool(message.redelivered),
        headers=dict(message.headers or {}),
        type=message.type,
        message_id=message.message_id,
    )


class AmqpSubscription(Subscription):
    """Consumes one queue on its own channel, straight from aiormq's deliveries.

    aio-pika's `queue.consume` wraps every delivery in an IncomingMessage and a second task;
    this consumer takes aiormq's DeliveredMessage as is (a tenth of a consumer's CPU per
    message). The robust channel re-declares the queue after a reconnect and then calls
    `reopen_callbacks`, where the consumer is registered again on the new underlying channel.
    """

    def __init__(
        self,
        channel: AbstractChannel,
        queue: AbstractQueue,
        handler: Handler,
        settler: Settler,
        *,
        delete_queue: bool = False,
    ) -> None:
        super().__init__(queue.name)
        self._channel, self._queue, self._handler, self._settler = channel, queue, handler, settler
        self._delete_queue = delete_queue
        self._tasks: set[asyncio.Task[None]] = set()
        self._arguments: dict[str, Any] | None = None
        self._consumer: tuple[Any, str] | None = None  # (aiormq channel, consumer tag)
        self._stopped = False
        self.acks = AckCoalescer()
        self.caught_up.set()

    async def start(self, arguments: dict[str, Any] | None = None) -> None:
        self._arguments = arguments
        await self._consume()
        self._channel.reopen_callbacks.add(self._consume_again)  # type: ignore[attr-defined]

    async def _consume(self) -> None:
        underlay = await self._channel.get_underlay_channel()
        ok = await underlay.basic_consume(self.queue, self._on_delivery, arguments=self._arguments)
        assert ok.consumer_tag is not None
        self._consumer = (underlay, ok.consumer_tag)
        underlay.on_consumer_cancel_callbacks.add(self._on_broker_cancel)

    async def _consume_again(self, *_: Any) -> None:
        if not self._stopped:
            await self._consume()
            log.info("consuming %s again", self.queue)

    def _on_broker_cancel(self, frame: Any) -> None:
        """The broker cancelled the consumer (e.g. its queue was deleted): consume again. If the
        queue is gone the channel closes, and the robust channel re-declares it on reopen."""
        if self._stopped or self._consumer is None or frame.consumer_tag != self._consumer[1]:
            return
        log.warning("the broker cancelled the consumer of %s; consuming again", self.queue)
        task = asyncio.ensure_future(self._resubscribe())  # not inline: this is the frame reader
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resubscribe(self) -> None:
        try:
            await self._consume_again()
        except CLOSED_ERRORS as error:  # the channel closed over it; its reopen consumes again
            log.warning("consuming %s again failed (%r); the channel reopens", self.queue, error)

    async def _on_delivery(self, message: DeliveredMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            # First thing, synchronously: aiormq starts the delivery tasks in delivery order,
            # so tags are tracked in order (a multiple ack must never cover one not handled).
            channel, tag = message.channel, message.delivery.delivery_tag  # type: ignore[union-attr]
            assert tag is not None  # a consumer's delivery always carries one (basic.deliver)
            if channel.is_closed:
                return  # its channel is gone: the broker requeued it
            self.acks.track(channel, tag)
            await self._handle(message, channel, tag)
        finally:
            self._tasks.discard(task)

    async def _handle(self, message: DeliveredMessage, channel: Any, tag: int) -> None:
        outcome = Outcome.REQUEUE  # a cancelled handler's message goes back to the queue
        try:
            outcome = await self._settler(raw_of_delivered(message, self.queue), self._handler)
        finally:
            self.acks.settle(channel, tag, outcome)

    async def stop(self, grace_s: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._channel.reopen_callbacks.discard(self._consume_again)  # type: ignore[attr-defined]
        if self._consumer is not None and not self._consumer[0].is_closed:
            underlay, tag = self._consumer
            try:
                await underlay.basic_cancel(tag)
            except CLOSED_ERRORS as error:
                log.debug("cancel of %s failed: %r", self.queue, error)
        await drain(self._tasks, grace_s)
        await self.acks.drain()  # the last outcomes go out before the channel closes
        if self._channel.is_closed:
            return
        try:
            if self._delete_queue:
                await self._queue.delete(if_unused=False, if_empty=False)
            await self._channel.close()
        except CLOSED_ERRORS as error:
            log.debug("closing the channel of %s failed: %r", self.queue, error)
