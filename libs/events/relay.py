"""The outbox relay: puts the events the API and the projector appended onto the bus.

The `events` table is the outbox. The relay reads events of the relayed sources ("api",
"projector"; never trainer events — they came from the bus) after its cursor in position order,
publishes them in batches with publisher confirms, and only then advances `relay_cursor`. A
crash between the confirm and the cursor update republishes that batch on restart: duplicates
are expected and consumers dedupe by event_id; nothing is ever skipped.

Positions are assigned in commit order (see store.py), so once a pass has drained everything
up to the log's max position it may move the cursor there: later commits always get higher
positions. This keeps the relay from rescanning the trainer events it never relays.

Wake-ups come from the notifier (NOTIFY / in-process signal); a slow poll is the safety net
for a lost hint. On Postgres one relay per cursor name publishes at a time: it holds a
session-level advisory lock, so several API processes can each run a relay, the others stand
by. Failures (broker down, database down) are logged and retried with backoff; `stop()` lets
the current batch finish (publish and cursor) and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Collection
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.events.bus.port import EventBus
from libs.events.notify import Notifier
from libs.events.store import StoredEvent

log = logging.getLogger("ktrdr.relay")
RELAYED_SOURCES = ("api", "projector")


class RelayStore(Protocol):
    async def read_all(
        self, after: int = 0, limit: int = 1000, sources: Collection[str] | None = None
    ) -> list[StoredEvent]: ...

    async def max_position(self) -> int: ...

    async def get_relay_cursor(self, name: str) -> int: ...

    async def set_relay_cursor(self, name: str, position: int) -> None: ...


class OutboxRelay:
    def __init__(
        self,
        store: RelayStore,
        bus: EventBus,
        *,
        notifier: Notifier | None = None,
        name: str = "outbox",
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
        engine = getattr(store, "engine", None)
        postgres = isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql"
        self._lease = AdvisoryLease(engine, f"relay:{name}") if postgres else None
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
            high = await self._store.max_position()
            batch = await self._store.read_all(cursor, self._batch_size, self._sources)
            if batch:
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
        return sent

    async def run(self) -> None:
        """Relay until `stop()`."""
        backoff = 0.0
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
                await self._wait_for_work()
        finally:
            if self._lease is not None:
                await self._lease.release()

    def stop(self) -> None:
        """Ask `run()` to return after the batch in flight (publish and cursor); await the task
        running it to know it has."""
        self._stopping.set()

    async def _wait_for_work(self) -> None:
        if self._notifier is None or self._cursor is None:
            await self._pause(self._poll_interval_s)
            return
        change = asyncio.ensure_future(
            self._notifier.wait_for_change(self._cursor, self._poll_interval_s)
        )
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({change, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (change, stop):
                task.cancel()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


class AdvisoryLease:
    """A Postgres session-level advisory lock held on its own connection: while a relay holds
    it, others with the same name stand by. Losing the connection loses the lease."""

    def __init__(self, engine: Any, name: str) -> None:
        self._engine: AsyncEngine = engine
        digest = hashlib.sha256(name.encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        self._conn: AsyncConnection | None = None

    async def hold(self) -> bool:
        """True while this process holds the lease (acquiring it if free)."""
        if self._conn is not None:
            try:
                await self._conn.execute(sa.text("SELECT 1"))
                await self._conn.commit()
                return True
            except Exception as error:  # the connection died: so did the lock
                log.warning("relay lease lost: %r", error)
                await self._drop()
        conn = await self._engine.connect()
        got = await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(self._key)))
        await conn.commit()  # a session lock outlives the transaction; don't idle in one
        if got:
            self._conn = conn
            return True
        await conn.close()
        return False

    async def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(Exception):
            await self._conn.scalar(sa.select(sa.func.pg_advisory_unlock(self._key)))
            await self._conn.commit()
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
