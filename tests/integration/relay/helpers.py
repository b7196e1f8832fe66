"""Bus wrappers that record, fail or "crash" a relay at chosen points, and a collector."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from libs.events.bus.port import Delivery, EventBus, Handler, PublishFailed, Subscription
from libs.events.catalog import Event

WAIT_S = 10.0


class WrappedBus(EventBus):
    """Delegates to a real bus; records each publish_many call (after its confirm)."""

    def __init__(self, inner: EventBus) -> None:
        self.inner, self.topology = inner, inner.topology
        self.batches: list[list[Event]] = []
        self.fail_next = 0  # this many publish_many calls raise PublishFailed
        self.hang_after_batches: int | None = None  # then confirm one more and never return
        self.hung = asyncio.Event()

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    async def publish_many(self, events: Sequence[Event]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise PublishFailed("injected: broker said no")
        await self.inner.publish_many(events)
        self.batches.append(list(events))
        if self.hang_after_batches is not None and len(self.batches) > self.hang_after_batches:
            self.hung.set()  # confirmed, but the caller never gets to update its cursor
            await asyncio.Event().wait()

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 1) -> Subscription:
        return await self.inner.consume(queue, handler, prefetch=prefetch)

    async def consume_control(
        self, handler: Handler, *, from_start: bool = True, prefetch: int = 100
    ) -> Subscription:
        return await self.inner.consume_control(handler, from_start=from_start, prefetch=prefetch)

    async def tap(self, patterns: Sequence[str], handler: Handler) -> Subscription:
        return await self.inner.tap(patterns, handler)

    async def queue_stats(self, queues: Sequence[str]) -> Any:
        return await self.inner.queue_stats(queues)

    async def dead_letters(self, limit: int = 100) -> Any:
        return await self.inner.dead_letters(limit)

    async def take_dead_letter(self, letter_id: str, *, requeue: bool) -> Any:
        return await self.inner.take_dead_letter(letter_id, requeue=requeue)


class Seen:
    """Records event ids as they arrive; `wait_for(ids)` returns once all of them have."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._changed = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> None:
        self.ids.append(str(delivery.event.event_id))
        self._changed.set()

    async def wait_for(self, wanted: Sequence[str]) -> None:
        async def all_seen() -> None:
            while not set(wanted) <= set(self.ids):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(all_seen(), WAIT_S)
