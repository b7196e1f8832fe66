"""The control-stream subscription: one message at a time in stream order, bookmarks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiormq.abc import DeliveredMessage

from libs.events.bus.amqp.consumers import AmqpSubscription
from libs.events.bus.messages import MARKER_HEADER, MARKER_TYPE
from libs.events.bus.policy import Outcome


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

    async def _handle(self, message: DeliveredMessage, channel: Any, tag: int) -> None:
        async with self._in_order:
            properties = message.header.properties
            if properties.message_type == MARKER_TYPE:  # for their own reader only
                marker = (properties.headers or {}).get(MARKER_HEADER)
                if marker == self.marker:
                    self.caught_up.set()
                waiter = self._syncs.get(marker) if isinstance(marker, str) else None
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                self.acks.settle(channel, tag, Outcome.ACK)
                return
            await super()._handle(message, channel, tag)
