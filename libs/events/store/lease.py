"""The relay lease of the SQL store on Postgres: one relay per cursor name publishes at a time
(`SqlEventStore.relay_lease`; SQLite serves one process and needs none)."""

from __future__ import annotations

import contextlib
import hashlib
import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("ktrdr.relay")


class AdvisoryLease:
    """A Postgres session-level advisory lock held on its own connection: while a relay holds
    it, others with the same name stand by. Losing the connection loses the lease. The
    connection runs in AUTOCOMMIT (a session lock needs no transaction), so the check before
    each pass is one round trip, not BEGIN + SELECT + COMMIT."""

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self._engine = engine
        digest = hashlib.sha256(name.encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        self._conn: AsyncConnection | None = None

    async def hold(self) -> bool:
        """True while this process holds the lease (acquiring it if free)."""
        if self._conn is not None:
            try:
                await self._conn.execute(sa.text("SELECT 1"))
                return True
            except Exception as error:  # the connection died: so did the lock
                log.warning("relay lease lost: %r", error)
                await self._drop()
        conn = await self._engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")  # never idle in a tx
            got = await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(self._key)))
        except BaseException:
            await conn.close()
            raise
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
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
