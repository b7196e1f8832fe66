"""The composition root: a process's infrastructure built from settings, torn down in one place.

    async with open_stack(database=settings, broker=settings, relay="on") as stack:
        ...  # stack.store, stack.notifier, stack.bus, stack.relay

Parts, in build order; teardown runs in the reverse order (relay, bus, store, notifier, engine):

    engine    database.database_url           AsyncEngine (none for "memory://")
    notifier  database.database_url           LISTEN/NOTIFY on Postgres, in process otherwise
    store     engine (+ notifier)             the event store (in memory for "memory://")
    bus       broker.broker_url               RabbitMQ or the in-process bus, with the topology
              broker.topology_prefix          named by the prefix every process shares
    relay     store + bus + notifier          the outbox relay, cursor RELAY_NAME

and, beside the stack, `open_artifacts(settings)`: the artifact store of KTRDR_ARTIFACTS_URL
(the trainer publishes models there, the API serves them from there).

What each process takes:

    api (standalone)   database + broker; connect="background", relay="on" (settings.run_relay)
    ktrdr up           database + broker; connect="caller", relay="deferred" (after recovery)
    projector          database + broker, notifier=False; connect="caller" (it waits itself)
    trainer            broker only; connect="caller" (TrainerService starts the bus)
    test rigs          what they exercise; "memory://" gives an in-memory store, no I/O

The broker may be down when a process starts. With connect="background" the stack still opens
(the API serves: healthz up, readyz 503 naming the broker) and the bus connects in the
background with backoff; a relay starts publishing once it is connected, everything appended
meanwhile included, from its cursor (the outbox exists for exactly this).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.artifacts import ArtifactStore
from libs.artifacts.settings import ArtifactSettings
from libs.events.bus import bus_from_url
from libs.events.bus.port import EventBus
from libs.events.bus.topology import Topology
from libs.events.notify.port import DEFAULT_CHANNEL, Notifier
from libs.events.relay import DEFAULT_NAME as RELAY_NAME  # the cursor recovery reads too
from libs.events.settings import IN_MEMORY_DATABASE_URL, BrokerSettings, DatabaseSettings
from libs.events.store.port import EventStore

if TYPE_CHECKING:
    from libs.artifacts.port import ArtifactStore
    from libs.artifacts.settings import ArtifactSettings
    from libs.events.migrate import SchemaStatus

log = logging.getLogger("ktrdr.bootstrap")

CONNECT_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)

T = TypeVar("T")
Connect = Literal["caller", "now", "background"]
RelayMode = Literal["off", "on", "deferred"]


class MissingPart(LookupError):
    """A part the stack was opened without (e.g. the store of a broker-only stack)."""


class DatabaseUnreachable(ConnectionError):
    """The notifier could not connect while the stack was opening (Postgres down or refusing)."""


class RelayTask:
    """The outbox relay (libs/events/relay.py) as a task of this process.

    `start()` connects the bus first (retrying with backoff; a no-op when it is connected),
    then relays until `stop()`."""

    def __init__(
        self,
        store: EventStore,
        bus: EventBus,
        notifier: Notifier | None,
        *,
        name: str,
        bus_ready: asyncio.Event,
    ) -> None:
        from libs.events.relay import OutboxRelay

        self.name = name
        self._bus, self._bus_ready = bus, bus_ready
        self._relay = OutboxRelay(store, bus, notifier=notifier, name=name)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def published(self) -> int:
        """Events published so far (duplicates after a restart included)."""
        return self._relay.published

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ktrdr-outbox-relay")

    async def _run(self) -> None:
        await connect_with_retry(self._bus, self._bus_ready)
        await self._relay.run()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let the batch in flight finish (publish + cursor), then return. Idempotent."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._relay.stop()
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if not done:  # still connecting, or a publish that hangs: give up on it
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before reconnect attempt `attempt` + 1 (0-based), capped at the last."""
    return CONNECT_BACKOFF_S[min(attempt, len(CONNECT_BACKOFF_S) - 1)]


async def connect_with_retry(bus: EventBus, ready: asyncio.Event) -> None:
    """Start the bus, retrying with backoff until it connects; then set `ready`."""
    attempt = 0
    while True:
        try:
            await bus.start()
            ready.set()
            return
        except Exception as exc:  # noqa: BLE001 - keep trying; readyz reports the broker
            delay = backoff_delay(attempt)
            log.warning("broker not reachable (%s); retrying in %.1f s", exc, delay)
            attempt += 1
            await asyncio.sleep(delay)


@dataclass
class Stack:
    """The parts `open_stack` built. Asking for a part it was opened without raises
    MissingPart; `has_bus` tells whether the bus is there."""

    relay_name: str = RELAY_NAME
    # Set once the bus is connected (by the stack with connect="now"/"background", or the relay).
    bus_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _engine: AsyncEngine | None = None
    _notifier: Notifier | None = None
    _store: EventStore | None = None
    _bus: EventBus | None = None
    _relay: RelayTask | None = None

    @property
    def engine(self) -> AsyncEngine:
        return _present(self._engine, "engine")

    @property
    def notifier(self) -> Notifier:
        return _present(self._notifier, "notifier")

    @property
    def store(self) -> EventStore:
        return _present(self._store, "store")

    @property
    def bus(self) -> EventBus:
        return _present(self._bus, "bus")

    @property
    def relay(self) -> RelayTask:
        return _present(self._relay, "relay")

    async def ping_database(self) -> str:
        """Raise unless the database answers (`SELECT 1`); the in-memory store always does.
        Returns what answered, for /readyz."""
        if self._engine is None:
            self.store  # noqa: B018 - raises MissingPart for a stack opened without a database
            return "in-memory store"
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return f"{self._engine.dialect.name} reachable"

    async def schema_status(self) -> SchemaStatus | None:
        """The database schema against the code's migrations (libs/events/migrate.py); None
        for the in-memory store, which has no schema. Raises if the database does not answer."""
        if self._engine is None:
            self.store  # noqa: B018 - raises MissingPart for a stack opened without a database
            return None
        from libs.events.migrate import schema_status

        return await schema_status(self._engine)

    @property
    def has_bus(self) -> bool:
        return self._bus is not None


def _present(part: T | None, name: str) -> T:
    if part is None:
        raise MissingPart(f"this stack was opened without a {name}")
    return part


@asynccontextmanager
async def open_stack(
    *,
    database: DatabaseSettings | None = None,
    broker: BrokerSettings | None = None,
    notifier: bool = True,
    connect: Connect = "caller",
    relay: RelayMode = "off",
    topology: Topology | None = None,
    channel: str = DEFAULT_CHANNEL,
    engine_options: Mapping[str, Any] | None = None,
) -> AsyncIterator[Stack]:
    """Build the parts the settings given ask for; close them all, in reverse order, on exit.

    database: engine, notifier (unless `notifier=False`) and store; "memory://" builds an
        in-memory store with an in-process notifier and no engine.
    broker: the bus, on `Topology(prefix=broker.topology_prefix)` unless `topology` is given
        (tests that need other delivery limits). `connect`: "caller" leaves starting it to the
        caller or the service using it (both start it idempotently), "now" starts it before the
        stack is returned (errors propagate), "background" retries with backoff in a task.
    relay: needs both. "on" starts it now (it connects the bus first, retrying), "deferred"
        builds it for the caller to `stack.relay.start()` later; the stack stops it either way.

    channel and engine_options let stacks share one Postgres database in isolation (tests: a
    NOTIFY channel and a schema on the search_path each); `make_engine` takes the options.

    The notifier is started (Postgres: LISTEN) before the stack is returned; DatabaseUnreachable
    if it cannot connect.
    """
    if relay != "off" and (database is None or broker is None):
        raise ValueError("open_stack: a relay needs both the database and the broker settings")
    stack = Stack()
    connector: asyncio.Task[None] | None = None
    try:
        if database is not None:
            _open_database(
                stack,
                database.database_url,
                notifier=notifier,
                channel=channel,
                engine_options=engine_options or {},
            )
            if stack._notifier is not None:
                try:
                    await stack._notifier.start()
                except Exception as error:
                    raise DatabaseUnreachable(str(error) or type(error).__name__) from error
        if broker is not None:
            stack._bus = bus_from_url(
                broker.broker_url, topology or Topology(prefix=broker.topology_prefix)
            )
            if connect == "now":
                await stack._bus.start()
                stack.bus_ready.set()
        if relay != "off":
            stack._relay = RelayTask(
                stack.store,
                stack.bus,
                stack._notifier,
                name=stack.relay_name,
                bus_ready=stack.bus_ready,
            )
            if relay == "on":
                stack._relay.start()
        if connect == "background" and stack._bus is not None and relay != "on":
            connector = asyncio.create_task(
                connect_with_retry(stack._bus, stack.bus_ready), name="ktrdr-bus-connect"
            )
        yield stack
    finally:
        await _close(stack, connector)


def open_artifacts(settings: ArtifactSettings) -> ArtifactStore:
    """The artifact store (models, checkpoints) of KTRDR_ARTIFACTS_URL: a folder (the embedded
    default, or a shared volume) or S3-compatible object storage. It holds no connection to
    close: boto3 clients and folders need no teardown."""
    store = settings.artifact_store()
    log.info("artifact store: %r", store)
    return store


def _open_database(
    stack: Stack,
    url: str,
    *,
    notifier: bool,
    channel: str,
    engine_options: Mapping[str, Any],
) -> None:
    if url == IN_MEMORY_DATABASE_URL:
        from libs.events.notify.inprocess import InProcessNotifier
        from libs.events.store.memory import InMemoryEventStore

        stack._notifier = InProcessNotifier() if notifier else None
        stack._store = InMemoryEventStore(notifier=stack._notifier)
        return
    from libs.events.db import make_engine
    from libs.events.notify import make_notifier
    from libs.events.store.sql import SqlEventStore

    stack._engine = make_engine(url, **engine_options)
    stack._notifier = make_notifier(url, channel=channel) if notifier else None
    stack._store = SqlEventStore(stack._engine, notifier=stack._notifier, channel=channel)


async def _close(stack: Stack, connector: asyncio.Task[None] | None) -> None:
    if stack._relay is not None:
        await stack._relay.stop()
    if connector is not None:
        connector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connector
    if stack._bus is not None:
        with contextlib.suppress(Exception):
            await stack._bus.close()
    if stack._notifier is not None:
        await stack._notifier.stop()
    if stack._engine is not None:
        await stack._engine.dispose()
