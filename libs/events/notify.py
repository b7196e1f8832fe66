"""Commit notifications: "the log grew to position N (training T, type X)".

They are wake-up hints for tailing readers (the relay, SSE streams); readers always re-read the
store from their own cursor, so a lost or coalesced notification costs latency, never data (a
slow poll stays the safety net). One interface, two implementations:

- `InProcessNotifier`: the store calls `publish()` after each commit (SQLite / embedded mode).
- `PostgresNotifier`: LISTENs on the channel the store `pg_notify`s inside its append
  transaction (Postgres delivers at commit, to every process); a dedicated asyncpg connection,
  re-established after a drop. `publish()` is a no-op there: delivery comes through LISTEN.

After a reconnect (notifications may have been missed) subscribers get a `RESYNC` notification
(position 0, type "*"): re-read from your cursor.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, NamedTuple, Protocol

DEFAULT_CHANNEL = "ktrdr_events"
SUBSCRIBER_QUEUE_SIZE = 10_000


class Notification(NamedTuple):
    position: int
    training_id: str | None
    type: str

    def to_json(self) -> str:
        return json.dumps(
            {"position": self.position, "training_id": self.training_id, "type": self.type}
        )

    @classmethod
    def from_json(cls, text: str) -> Notification:
        raw = json.loads(text)
        return cls(int(raw["position"]), raw.get("training_id"), str(raw["type"]))


RESYNC = Notification(0, None, "*")


class Notifier(Protocol):
    """What the store signals and what tailing readers wait on (InProcessNotifier or
    PostgresNotifier; start it before use, stop it at shutdown)."""

    async def start(self, timeout: float = 10.0) -> None: ...  # noqa: ASYNC109

    async def stop(self) -> None: ...

    @property
    def last_position(self) -> int: ...

    def publish(self, notifications: Sequence[Notification]) -> None: ...

    def subscribe(self) -> Subscription: ...

    async def wait_for_change(self, after_position: int, timeout: float) -> bool: ...  # noqa: ASYNC109


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


def make_notifier(url: str, *, channel: str = DEFAULT_CHANNEL, **kwargs: Any) -> Notifier:
    """The notifier for a database URL: LISTEN/NOTIFY on Postgres, in-process on SQLite.
    A PostgresNotifier must be started (`await notifier.start()` or `async with`)."""
    if url.startswith("postgresql"):
        from libs.events.notify_pg import PostgresNotifier

        return PostgresNotifier(url, channel=channel, **kwargs)
    return InProcessNotifier()
