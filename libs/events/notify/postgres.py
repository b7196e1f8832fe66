"""PostgresNotifier: LISTEN on the store's pg_notify channel over a dedicated asyncpg connection.

One connection per process (not per subscriber), fanned out in memory. A supervisor task keeps
it alive: it pings every `health_interval` seconds, reconnects with backoff after a drop or a
failed ping, and then delivers RESYNC so readers re-read from their cursors (notifications sent
while disconnected are gone; the log is not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from libs.events.notify.inprocess import FanOut
from libs.events.notify.port import DEFAULT_CHANNEL, RESYNC, Notification

log = logging.getLogger(__name__)


def asyncpg_dsn(url: str) -> str:
    """postgresql+asyncpg://... (SQLAlchemy) -> postgresql://... (asyncpg)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"PostgresNotifier needs a postgresql URL, got {parsed.drivername!r}")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresNotifier(FanOut):
    def __init__(
        self,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        server_settings: dict[str, str] | None = None,
        health_interval: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        super().__init__()
        self._dsn = asyncpg_dsn(url)
        self.channel = channel
        self._server_settings = server_settings
        self._health_interval = health_interval
        self._max_backoff = max_backoff
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def publish(self, notifications: Sequence[Notification]) -> None:
        """No-op: Postgres delivers the store's pg_notify to every listener at commit."""

    async def start(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """LISTEN (retrying for up to `timeout` seconds), then keep the connection alive."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await self._connect()
                    break
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("LISTEN %s failed (%s); retrying", self.channel, exc)
                    await asyncio.sleep(0.2)
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._close()
        await super().stop()

    async def _connect(self) -> None:
        self._lost.clear()
        conn = await asyncpg.connect(self._dsn, server_settings=self._server_settings)
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(self.channel, self._on_notify)
        self._conn = conn

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await conn.close()

    async def _supervise(self) -> None:
        backoff = 0.1
        while True:
            if self.connected and await self._healthy():
                backoff = 0.1
                continue
            await self._close()
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("LISTEN %s reconnect failed (%s)", self.channel, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            self.reconnects += 1
            log.info("LISTEN %s re-established", self.channel)
            self._deliver([RESYNC])

    async def _healthy(self) -> bool:
        """Wait one health interval; False if the connection dropped or a ping failed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._health_interval):
                await self._lost.wait()
        if self._lost.is_set() or self._conn is None:
            return False
        try:
            async with asyncio.timeout(self._health_interval):
                await self._conn.fetchval("SELECT 1")
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            note = Notification.from_json(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed notification on %s: %.200s", self.channel, payload)
            return
        self._deliver([note])
