"""The standalone API's composition root: engine, notifier, store, bus and relay from settings.

The broker may be down when the API starts: the API still serves (healthz up, readyz 503 naming
the broker, submissions still appended to the log), and the bus connects in the background with
backoff; the relay starts once it is connected and publishes everything appended meanwhile
from its cursor (the outbox is exactly for this).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from services.api.deps import Components
from services.api.settings import ApiSettings

log = logging.getLogger("ktrdr.api")

RELAY_NAME = "outbox"
CONNECT_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


class RelayTask:
    """Runs the outbox relay (libs/events/relay.py) as a task of this process."""

    def __init__(
        self, store: Any, bus: Any, notifier: Any, bus_ready: asyncio.Event | None = None
    ) -> None:
        self.store, self.bus, self.notifier = store, bus, notifier
        self.bus_ready = bus_ready or asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.relay: Any = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, *, connect_first: bool = False) -> None:
        self._task = asyncio.create_task(self._run(connect_first), name="ktrdr-outbox-relay")

    async def _run(self, connect_first: bool) -> None:
        if connect_first:
            await connect_with_retry(self.bus, self.bus_ready)
        from libs.events.relay import OutboxRelay

        self.relay = OutboxRelay(self.store, self.bus, notifier=self.notifier)
        await self.relay.run()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let the batch in flight finish (publish + cursor), then return."""
        if self._task is None:
            return
        if self.relay is not None:
            self.relay.stop()
        done, _ = await asyncio.wait({self._task}, timeout=grace_s)
        if not done:  # still connecting, or a publish that hangs: give up on it
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._task = None


async def connect_with_retry(bus: Any, ready: asyncio.Event) -> None:
    attempt = 0
    while True:
        try:
            await bus.start()
            ready.set()
            return
        except Exception as exc:  # noqa: BLE001 - keep trying; readyz reports the broker
            delay = CONNECT_BACKOFF_S[min(attempt, len(CONNECT_BACKOFF_S) - 1)]
            log.warning("broker not reachable (%s); retrying in %.1f s", exc, delay)
            attempt += 1
            await asyncio.sleep(delay)


def make_notifier(database_url: str) -> Any:
    """Postgres: LISTEN/NOTIFY across processes; SQLite: in-process signalling by the store."""
    from libs.events.db import parse_url

    if parse_url(database_url).get_backend_name() == "postgresql":
        from libs.events.notify_pg import PostgresNotifier

        return PostgresNotifier(database_url)
    from libs.events.notify import InProcessNotifier

    return InProcessNotifier()


@asynccontextmanager
async def standalone_components(
    settings: ApiSettings, *, run_relay: bool | None = None
) -> AsyncIterator[Components]:
    from libs.events.bus import Topology, bus_from_url
    from libs.events.db import make_engine
    from libs.events.store import EventStore

    engine = make_engine(settings.database_url)
    notifier = make_notifier(settings.database_url)
    start = getattr(notifier, "start", None)  # PostgresNotifier: LISTEN before serving
    if start is not None:
        await start()
    store = EventStore(engine, notifier=notifier)
    bus = bus_from_url(settings.broker_url, Topology(prefix=settings.topology_prefix))
    bus_ready = asyncio.Event()
    relay = RelayTask(store, bus, notifier, bus_ready)
    wanted = settings.run_relay if run_relay is None else run_relay
    connector: asyncio.Task[None] | None = None
    if wanted:
        relay.start(connect_first=True)
    else:
        connector = asyncio.create_task(
            connect_with_retry(bus, bus_ready), name="ktrdr-bus-connect"
        )
    try:
        yield Components(
            settings=settings,
            store=store,
            notifier=notifier,
            bus=bus,
            engine=engine,
            relay=relay,
            bus_ready=bus_ready,
        )
    finally:
        await relay.stop()
        if connector is not None:
            connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connector
        with contextlib.suppress(Exception):
            await bus.close()
        await notifier.stop()
        await engine.dispose()
