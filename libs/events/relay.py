"""The outbox relay: puts the events the API and the projector appended onto the bus.

The `events` table is the outbox. The relay reads events of the relayed sources ("api",
"projector"; never trainer events — they came from the bus) after its cursor in position order,
publishes them in batches with publisher confirms, and only then advances `relay_cursor`. A
crash between the confirm and the cursor update republishes that batch on restart: duplicates
are expected and consumers dedupe by event_id; nothing is ever skipped.

Positions are assigned in commit order (see store/port.py), so once a pass has drained everything
up to the log's max position it may move the cursor there: later commits always get higher
positions. This keeps the relay from rescanning the trainer events it never relays.

Wake-ups come from the notifier (NOTIFY / in-process signal), for commits that may hold
something to relay (see TRAINER_ONLY_TYPES); a slow poll is the safety net for a lost hint.

Where several processes share the store (Postgres) one relay per cursor name publishes at a
time: it holds the store's relay lease (`store.relay_lease`, a session-level advisory lock), so
several API processes can each run a relay, the others stand by.
Failures (broker down, database down) are logged and retried with backoff; `stop()` lets
the current batch finish (publish and cursor) and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from typing import Protocol

from libs import metrics
from libs.events.bus.port import EventBus
from libs.events.catalog import TRAINER_ONLY_TYPES
from libs.events.notify.port import RESYNC, Notification, NotificationQueue, Notifier
from libs.events.store.port import EventLog, RelayLease

log = logging.getLogger("ktrdr.relay")
RELAYED_SOURCES = ("api", "projector")
DEFAULT_NAME = "outbox"
# A commit announced with a type only trainers emit (catalog TRAINER_ONLY_TYPES) appended
# nothing the relay publishes, so it does not wake the relay -- under load most commits are
# trainer progress, and a pass per commit competed with the API's SSE streams. Every other type
# (a new one too) wakes it. A notification names one event per training and commit, so a
# relayed event hidden behind a trainer event of the same training in the same commit (a
# projector Failed, rarely) waits for the next wake-up, at most `poll_interval_s`.


class RelayStore(EventLog, Protocol):
    """What the relay needs of the store (an EventStore has it all)."""

    async def get_relay_cursor(self, name: str) -> int: ...

    async def set_relay_cursor(self, name: str, position: int) -> None: ...

    def relay_lease(self, name: str) -> RelayLease | None: ...


class Relay(Protocol):
    """A running outbox relay, as its owner (a service's lifespan) drives it."""

    name: str

    async def run(self) -> None: ...

    def stop(self) -> None: ...

    async def relay_pending(self) -> int: ...


class OutboxRelay:
    def __init__(
        self,
        store: RelayStore,
        bus: EventBus,
        *,
        notifier: Notifier | None = None,
        name: str = DEFAULT_NAME,
        sources: Collection[str] = RELAYED_SOURCES,
        batch_size: int = 500,
        poll_interval_s: float = 5.0,
        max_backoff_s: float = 5.0,
        skip_ahead_rows: int = 1000,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._store, self._bus, self._notifier = store, bus, notifier
        self.name, self._sources, self._batch_size = name, tuple(sources), batch_size
        self._poll_interval_s, self._max_backoff_s = poll_interval_s, max_backoff_s
        self._skip_ahead_rows = skip_ahead_rows
        self._cursor: int | None = None  # the last position known to be on the bus (or skipped)
        self._stopping = asyncio.Event()
        self._lease = store.relay_lease(f"relay:{name}")
        self.published = 0  # events published by this relay object (duplicates included)

    @property
    def cursor(self) -> int | None:
        return self._cursor

    async def relay_pending(self) -> int:
        """Publish everything relayable appended so far; return how many events went out."""
        cursor = self._cursor
        if cursor is None:
            cursor = self._cursor = await self._store.get_relay_cursor(self.name)
        sent = 0
        while True:
            high = await self._high_water()
            metrics.RELAY_BACKLOG.set(max(0, high - cursor))
            batch = await self._store.read_all(cursor, self._batch_size, self._sources)
            if batch:
                with metrics.RELAY_PUBLISH_SECONDS.time():
                    await self._bus.publish_many([stored.event for stored in batch])
                cursor = batch[-1].position
                await self._store.set_relay_cursor(self.name, cursor)  # only after the confirm
                self._cursor = cursor
                sent += len(batch)
                self.published += len(batch)
            drained = len(batch) < self._batch_size
            if drained or self._stopping.is_set():
                break
        if drained and high > cursor:  # nothing relayable is left up to `high`
            if high - cursor >= self._skip_ahead_rows:  # persist only big skips: fewer writes
                await self._store.set_relay_cursor(self.name, high)
            self._cursor = high
        metrics.RELAY_BACKLOG.set(max(0, high - (self._cursor or 0)))
        return sent

    async def _high_water(self) -> int:
        """A position at or below which every event is committed. The notifier's last one is
        (NOTIFY arrives at commit, and appends commit in position order), which saves a query
        per pass; a notifier that missed some only makes it lower, i.e. skips less."""
        if self._notifier is not None and self._notifier.last_position > 0:
            return self._notifier.last_position
        return await self._store.max_position()

    async def run(self) -> None:
        """Relay until `stop()`."""
        backoff = 0.0
        # Subscribed before the first pass: a commit during any pass still queues its wake-up.
        wakeups = self._notifier.subscribe() if self._notifier is not None else None
        try:
            while not self._stopping.is_set():
                try:
                    if self._lease is not None and not await self._lease.hold():
                        await self._pause(self._poll_interval_s)  # another relay is active
                        continue
                    await self.relay_pending()
                    backoff = 0.0
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    backoff = min(max(backoff * 2, 0.1), self._max_backoff_s)
                    log.warning(
                        "relay %s failed (%r); retrying in %.1fs", self.name, error, backoff
                    )
                    self._cursor = None  # re-read the durable cursor: it is the truth
                    await self._pause(backoff)
                    continue
                await self._wait_for_work(wakeups)
        finally:
            if wakeups is not None:
                wakeups.close()
            if self._lease is not None:
                await self._lease.release()

    def stop(self) -> None:
        """Ask `run()` to return after the batch in flight (publish and cursor); await the task
        running it to know it has."""
        self._stopping.set()

    async def _wait_for_work(self, wakeups: NotificationQueue | None) -> None:
        """Return on a commit that may hold something to relay, on stop(), or after the poll
        interval (counted from the last pass, whatever was skipped meanwhile)."""
        if wakeups is None or self._cursor is None:
            await self._pause(self._poll_interval_s)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._poll_interval_s
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while (remaining := deadline - loop.time()) > 0 and not stop.done():
                note = asyncio.ensure_future(wakeups.get(timeout=remaining))
                await asyncio.wait({note, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not note.done():
                    note.cancel()
                    return
                woken = note.result()
                if woken is None or self._may_hold_work(woken):
                    return
        finally:
            stop.cancel()

    def _may_hold_work(self, note: Notification) -> bool:
        if note == RESYNC:  # notifications may have been lost
            return True
        cursor = self._cursor if self._cursor is not None else 0
        # At or below the cursor: an earlier pass read past that commit already.
        return note.position > cursor and note.type not in TRAINER_ONLY_TYPES

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
