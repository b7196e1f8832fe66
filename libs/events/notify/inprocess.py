"""The in-process half of notifications: subscriber queues, the fan-out both notifiers deliver
through, and `InProcessNotifier` (the store calls `publish()` after each commit)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from libs.events.notify.port import RESYNC, Notification

SUBSCRIBER_QUEUE_SIZE = 10_000


class Subscription:
    """A subscriber's queue, registered from creation (nothing published after `subscribe()`
    returns is missed). Iterate with `async for`; close it (or use `async with`) when done.
    If the subscriber falls SUBSCRIBER_QUEUE_SIZE behind, older hints are dropped and a RESYNC
    is queued instead."""

    def __init__(self, hub: FanOut) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[Notification] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)

    def _offer(self, note: Notification) -> None:
        try:
            self._queue.put_nowait(note)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(RESYNC)

    async def get(self, timeout: float | None = None) -> Notification | None:  # noqa: ASYNC109
        """The next notification, or None after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    def close(self) -> None:
        self._hub._subscribers.discard(self)

    def __aiter__(self) -> AsyncIterator[Notification]:
        return self

    async def __anext__(self) -> Notification:
        return await self._queue.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class FanOut:
    """Delivers notifications to every subscriber and wakes `wait_for_change` callers.
    Lives on one event loop: `_deliver` must be called from that loop."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._last_position = 0
        self._resyncs = 0
        self._signal = asyncio.Event()  # replaced (after being set) on every delivery

    @property
    def connected(self) -> bool:
        """In process there is nothing to lose; PostgresNotifier reports its LISTEN link."""
        return True

    @property
    def last_position(self) -> int:
        """The highest position notified so far in this process."""
        return self._last_position

    async def start(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Nothing to connect in process; PostgresNotifier overrides it."""

    async def stop(self) -> None:
        """Drop all subscribers."""
        self._subscribers.clear()

    async def __aenter__(self) -> FanOut:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        self._subscribers.add(sub)
        return sub

    async def wait_for_change(self, after_position: int, timeout: float) -> bool:  # noqa: ASYNC109
        """True as soon as a position > after_position has been notified (at once if it already
        was) or a resync happened meanwhile; False after `timeout` seconds without either."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        resyncs = self._resyncs
        while self._last_position <= after_position and self._resyncs == resyncs:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(remaining):
                    await self._signal.wait()
            except TimeoutError:
                return False
        return True

    def _deliver(self, notes: Sequence[Notification]) -> None:
        if not notes:
            return
        for note in notes:
            if note == RESYNC:
                self._resyncs += 1
            elif note.position > self._last_position:
                self._last_position = note.position
            for sub in tuple(self._subscribers):
                sub._offer(note)
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()


class InProcessNotifier(FanOut):
    """Signalled by the store after each commit; for SQLite / single-process deployments."""

    def publish(self, notifications: Sequence[Notification]) -> None:
        self._deliver(notifications)
