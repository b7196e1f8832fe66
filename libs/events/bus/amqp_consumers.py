"""aio-pika message mapping and subscriptions (one channel each, see amqp.py).

A handler's outcome is settled through the subscription's AckCoalescer (amqp_acks.py): the
ack goes out on the next loop iteration, coalesced with the others settled meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from libs.events.bus.amqp_acks import CLOSED_ERRORS, AckCoalescer
from libs.events.bus.messages import MARKER_HEADER, MARKER_TYPE, RawMessage, outgoing
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


def raw_of(message: AbstractIncomingMessage, queue: str) -> RawMessage:
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
        self._consumer_tag: str | None = None
        self._stopped = False
        self.acks = AckCoalescer()
        self.caught_up.set()

    async def start(self, arguments: dict[str, Any] | None = None) -> None:
        self._consumer_tag = await self._queue.consume(self._on_message, arguments=arguments)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            # First thing, synchronously: handlers start in delivery order, so tags are tracked
            # in order (a multiple ack must never cover a delivery not yet handled).
            channel = _channel_of(message)
            if channel is None:
                return  # its channel is gone: the broker requeued it
            self.acks.track(channel, message.delivery_tag)
            await self._handle(message, channel)
        finally:
            self._tasks.discard(task)

    async def _handle(self, message: AbstractIncomingMessage, channel: Any) -> None:
        outcome = Outcome.REQUEUE  # a cancelled handler's message goes back to the queue
        try:
            outcome = await self._settler(raw_of(message, self.queue), self._handler)
        finally:
            self.acks.settle(channel, message.delivery_tag, outcome)

    async def stop(self, grace_s: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._consumer_tag is not None and not self._channel.is_closed:
            try:
                await self._queue.cancel(self._consumer_tag)
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


class ControlSubscription(AmqpSubscription):
    """The control stream: one message at a time in stream order, a bookmark for caught_up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # publish_marker(marker) appends a bookmark to the stream (AmqpBus._publish_marker).
        self._publish_marker: Callable[[str], Awaitable[None]] | None = kwargs.pop(
            "publish_marker", None
        )
        super().__init__(*args, **kwargs)
        self.caught_up.clear()
        self.marker = uuid.uuid4().hex
        self._in_order = asyncio.Lock()  # FIFO: aiormq starts the tasks in delivery order
        self._syncs: dict[str, asyncio.Future[None]] = {}  # bookmark → waiter of sync()

    async def sync(self) -> None:
        if self._publish_marker is None:
            await super().sync()
            return
        marker = uuid.uuid4().hex
        self._syncs[marker] = asyncio.get_running_loop().create_future()
        try:
            await self._publish_marker(marker)
            await self._syncs[marker]
        finally:
            self._syncs.pop(marker, None)

    async def _handle(self, message: AbstractIncomingMessage, channel: Any) -> None:
        async with self._in_order:
            if message.type == MARKER_TYPE:  # bookmarks are for their own reader only
                marker = (message.headers or {}).get(MARKER_HEADER)
                if marker == self.marker:
                    self.caught_up.set()
                waiter = self._syncs.get(marker) if isinstance(marker, str) else None
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                self.acks.settle(channel, message.delivery_tag, Outcome.ACK)
                return
            await super()._handle(message, channel)


def _channel_of(message: AbstractIncomingMessage) -> Any:
    """The aiormq channel the message came on, or None if it has closed since."""
    try:
        return message.channel
    except aio_pika.exceptions.ChannelInvalidStateError:
        return None
