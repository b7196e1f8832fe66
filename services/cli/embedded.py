"""`ktrdr up`: api + projector + relay + one trainer in ONE asyncio process.

The composition root (services/bootstrap.py) opens the stack; this wires the services onto it:

    stack: engine ─ store (+ notifier) ─┬─ API app (uvicorn)          ┌─ outbox relay
                                        └─ ProjectorService ◀── bus ──┴▶ TrainerService

With no configuration: SQLite (./var/ktrdr.db, migrated here) and the in-process bus. With
KTRDR_DATABASE_URL=postgresql+asyncpg://... and KTRDR_BROKER_URL=amqp://... the very same parts
run on Postgres (LISTEN/NOTIFY notifier) and RabbitMQ; the schema must then be migrated first
(`ktrdr db upgrade`), since other processes may share the database. KTRDR_DATABASE_URL=memory://
runs on the in-memory store: nothing to migrate, and nothing kept when the process ends.

The in-process bus forgets its queues when the process ends, so on start (in-process bus only)
`recover_orphans` settles what the last run left behind: requests still queued are published
again, trainings that were running continue from their newest checkpoint as their next attempt,
and cancels left half-done end as Cancelled.

On the first start (no API key stored), it makes an admin key and prints it once, with how to
use it; KTRDR_BOOTSTRAP_API_KEY gives that key instead (stored if new, never printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from libs.events.readmodels.trainings import ACTIVE_STATUSES, CANCELLING, QUEUED
from libs.logs import configure_logging
from libs.settings import LogSettings, redacted
from services.api.paths import API_PREFIX

if TYPE_CHECKING:
    import uvicorn

    from libs.events.bus.port import EventBus
    from libs.events.catalog import Event
    from libs.events.store.port import EventStore
    from services.api.settings import ApiSettings
    from services.bootstrap import Stack
    from services.trainer.service import TrainerService
    from services.trainer.settings import TrainerSettings

log = logging.getLogger("ktrdr.up")

_RECOVERY_NAMESPACE = uuid.UUID("6b747264-7570-4000-8000-696e74727074")


@dataclass(frozen=True)
class UpOptions:
    host: str | None = None
    port: int | None = None
    migrate: bool | None = None  # None: on SQLite only
    log_level: str = "info"
    access_log: bool = False


class StartupError(Exception):
    """A problem the user can fix (port in use, schema behind, broker unreachable)."""


def run_up(options: UpOptions, announce: Callable[[str], None] = print) -> int:
    from services.api.settings import ApiSettings

    overrides: dict[str, Any] = {
        k: v for k, v in (("host", options.host), ("port", options.port)) if v
    }
    api_settings = ApiSettings(**overrides)
    with _own_database(api_settings.database_url):
        return _run_owning(api_settings, options, announce)


@contextlib.contextmanager
def _own_database(database_url: str) -> Iterator[None]:
    """Hold the SQLite file's owner lock for the whole run (services/cli/owner_lock.py)."""
    from libs.events.settings import IN_MEMORY_DATABASE_URL
    from services.cli.owner_lock import DatabaseInUse, OwnerLock, sqlite_file

    try:
        database = None if database_url == IN_MEMORY_DATABASE_URL else sqlite_file(database_url)
    except ValueError as error:
        raise StartupError(f"KTRDR_DATABASE_URL: {error}") from None
    if database is None:  # Postgres is shared by design; memory:// belongs to this process
        yield
        return
    try:
        with OwnerLock(database):
            yield
    except DatabaseInUse as error:
        raise StartupError(str(error)) from None


def _run_owning(
    api_settings: ApiSettings, options: UpOptions, announce: Callable[[str], None]
) -> int:
    # Before the migration, which then logs through it: each line once.
    configure_logging(LogSettings(log_level=options.log_level))
    if _should_migrate(api_settings.database_url, options.migrate):
        from libs.events.migrate import upgrade

        # sync: Alembic runs its own event loop
        upgrade(api_settings.database_url, keep_logging=True)
    listener = bind(api_settings.host, api_settings.port)
    try:
        return asyncio.run(serve(api_settings, listener, options, announce))
    finally:
        listener.close()


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket up front: a busy port is a clear error, not a dying server."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StartupError(
            f"cannot listen on {host}:{port} ({error.strerror}); "
            "choose another with --port or KTRDR_PORT"
        ) from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(
    api_settings: ApiSettings,
    listener: socket.socket,
    options: UpOptions,
    announce: Callable[[str], None] = print,
) -> int:
    from services.bootstrap import DatabaseUnreachable, open_stack

    try:
        async with open_stack(
            database=api_settings, broker=api_settings, relay="deferred"
        ) as stack:
            return await _run(stack, api_settings, listener, options, announce)
    except DatabaseUnreachable as error:
        raise StartupError(
            f"cannot reach the database at {redacted(api_settings.database_url)}: {error}"
        ) from error


async def _run(
    stack: Stack,
    api_settings: ApiSettings,
    listener: socket.socket,
    options: UpOptions,
    announce: Callable[[str], None],
) -> int:
    from libs.events.bus import is_in_process
    from services.projector.service import ProjectorService
    from services.projector.settings import ProjectorSettings
    from services.trainer.settings import TrainerSettings

    stop = asyncio.Event()
    signals = _SignalCounter(stop)
    in_process_bus = is_in_process(api_settings.broker_url)
    # The in-process bus has no delivery-ack timeout: a training holds its request as long as
    # it runs, with no lease and no hand-overs.
    trainer_settings = TrainerSettings(lease_s=None) if in_process_bus else TrainerSettings()
    projector = ProjectorService(
        ProjectorSettings(), stack.store, stack.bus, probe=stack.ping_database
    )
    trainer: TrainerService | None = None
    server: uvicorn.Server | None = None
    try:
        await _check_schema(stack)
        first_key = await _bootstrap_key(stack, api_settings)
        try:
            await stack.bus.start()
        except Exception as error:
            raise StartupError(
                f"cannot reach the broker at {redacted(api_settings.broker_url)}: {error}"
            ) from error
        await projector.start()
        trainer = await _start_trainer(trainer_settings, stack.bus)
        if in_process_bus:
            await recover_orphans(stack.store, stack.bus, relay_name=stack.relay_name)
        stack.relay.start()  # after the recovery, which reads the relay's cursor
        server = _server(api_settings, stack, options)
        serving = asyncio.create_task(server.serve(sockets=[listener]), name="ktrdr-http")
        await _until_started(server, serving)
        announce(
            f"ktrdr up: http://{_url_host(api_settings.host)}:{api_settings.port}  "
            f"(dashboard at /, REST under {API_PREFIX}, docs at /docs; "
            f"database {redacted(api_settings.database_url)}, "
            f"bus {redacted(api_settings.broker_url)}; Ctrl-C stops)"
        )
        if first_key is not None:
            for line in first_key_lines(first_key):
                announce(line)
        signals.install()
        await asyncio.wait(
            {serving, asyncio.ensure_future(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        log.info("shutting down")
        server.should_exit = True
        signals.on_second = functools.partial(_force, server, trainer)
        await serving
        await stack.relay.stop()  # with the API, before the workers, as its last batch lands
        grace = 0.0 if in_process_bus else trainer_settings.shutdown_grace_s
        await trainer.stop(grace_s=grace)  # in-process: nobody else could take the work
        await projector.stop()
        return 0
    finally:
        signals.remove()
        if server is not None and not server.started:
            server.should_exit = True
        if trainer is not None:
            await trainer.stop(grace_s=0)
        await projector.stop(grace_s=0)


async def _check_schema(stack: Stack) -> None:
    """StartupError unless the schema is at the code's head (the in-memory store has none)."""
    try:
        schema = await stack.schema_status()
    except Exception as error:
        raise StartupError(f"cannot read the database schema: {error}") from error
    if schema is not None and not schema.at_head:
        raise StartupError(
            f"the database schema is not at the latest migration ({schema}; "
            "or start with `ktrdr up --migrate`)"
        )


async def _bootstrap_key(stack: Stack, api_settings: ApiSettings) -> str | None:
    """The admin key made on the first start (None when keys exist or one was given)."""
    from services.api.apikeys import InvalidKeyFormat, ensure_bootstrap_key

    given = api_settings.bootstrap_api_key
    try:
        return await ensure_bootstrap_key(
            stack.store, given.get_secret_value() if given else None, generate=True
        )
    except InvalidKeyFormat as error:
        raise StartupError(f"KTRDR_BOOTSTRAP_API_KEY: {error}") from None


def first_key_lines(key: str) -> list[str]:
    return [
        "first start: created an admin API key (tenant default). It is shown only this once:",
        f"    {key}",
        "use it: export KTRDR_API_KEY=<the key>   (or `ktrdr keys save <the key>`: a mode-0600",
        "config file), and send `Authorization: Bearer <the key>` from other HTTP clients.",
    ]


async def _start_trainer(settings: TrainerSettings, bus: EventBus) -> TrainerService:
    from libs.pipeline.device import configure_threads
    from services.trainer.service import TrainerService

    configure_threads()
    trainer = TrainerService(settings, bus)
    await trainer.start()
    return trainer


def _server(api_settings: ApiSettings, stack: Stack, options: UpOptions) -> uvicorn.Server:
    import uvicorn

    from services.api.app import create_app
    from services.api.server import ApiServer

    class EmbeddedServer(ApiServer):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # `ktrdr up` handles signals for all parts
            yield

    config = uvicorn.Config(
        create_app(api_settings, stack=stack),
        log_level=options.log_level.lower(),
        access_log=options.access_log,
        timeout_graceful_shutdown=3,
        lifespan="on",
        **api_settings.proxy_options(),
    )
    return EmbeddedServer(config)


async def _until_started(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    # uvicorn offers no "started" event, only a flag set at the end of its startup.
    while not server.started:
        if serving.done():
            serving.result()  # raises what stopped it
            raise StartupError("the HTTP server stopped during startup")
        await asyncio.sleep(0.02)


def _force(server: uvicorn.Server, trainer: TrainerService) -> None:
    log.info("second signal: stopping now")
    server.force_exit = True
    trainer.stop_now("second signal")


class _SignalCounter:
    """SIGINT/SIGTERM set `stop`; a second one calls `on_second` (stop without waiting)."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.on_second: Callable[[], None] | None = None
        self._installed = False

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._received)
        self._installed = True

    def remove(self) -> None:
        if self._installed:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            self._installed = False

    def _received(self) -> None:
        if self.stop.is_set() and self.on_second is not None:
            self.on_second()
        self.stop.set()


# --- recovery of the in-process bus's lost work -------------------------------------------------


async def recover_orphans(store: EventStore, bus: EventBus, *, relay_name: str) -> tuple[int, int]:
    """Settle trainings a previous in-process run left unfinished; (republished, resumed).

    Queued requests the relay already published went down with the old in-process bus: publish
    them again (those after the relay's cursor the relay publishes itself). Trainings that were
    running continue from their newest checkpoint: their request is published again as the
    copy the next attempt takes (its envelope's attempt is the one that was interrupted; the
    event_id is the stored request's, so the log keeps it once). A training whose cancel was
    asked for while it ran ends as Cancelled: nobody would finish stopping it otherwise."""
    from libs.events.catalog import Cancelled, TrainingRequested

    relayed_up_to = await store.get_relay_cursor(relay_name)
    republish: list[Event] = []
    resumed = 0
    cancelled: list[Event] = []
    cursor = None
    while True:
        page, cursor = await store.list_trainings(
            status=sorted(ACTIVE_STATUSES), after_cursor=cursor, limit=200
        )
        for state in page:
            if state.status == CANCELLING:
                cancelled.append(
                    Cancelled(
                        event_id=uuid.uuid5(_RECOVERY_NAMESPACE, state.training_id),
                        training_id=state.training_id,
                        tenant=state.tenant,
                        source="projector",
                        phase=state.phase,
                        epoch=state.epoch,
                        reason="`ktrdr up` stopped while this training was being cancelled",
                    )
                )
                continue
            stream = await store.read_stream(state.training_id, limit=50)
            request = next((s for s in stream if isinstance(s.event, TrainingRequested)), None)
            if request is None:
                continue
            if state.status == QUEUED:
                if request.position <= relayed_up_to:
                    republish.append(request.event)
                continue
            republish.append(request.event.model_copy(update={"attempt": state.attempt}))
            resumed += 1
        if cursor is None:
            break
    if cancelled:
        await store.append(cancelled)  # the relay publishes them (source "projector")
    if republish:
        await bus.publish_many(republish)
    if republish or cancelled:
        log.info(
            "recovered from the last run: %d queued requests published again, %d running "
            "trainings resume from their checkpoints, %d cancels completed",
            len(republish) - resumed,
            resumed,
            len(cancelled),
        )
    return len(republish) - resumed, resumed


# --- small helpers --------------------------------------------------------------------------------


def _should_migrate(url: str, migrate: bool | None) -> bool:
    """--migrate / --no-migrate; by default SQLite only (its file is this process's own). The
    in-memory store ("memory://": everything is lost when `ktrdr up` stops) has no schema."""
    from libs.events.db import parse_url
    from libs.events.settings import IN_MEMORY_DATABASE_URL

    if url == IN_MEMORY_DATABASE_URL:
        return False
    try:
        sqlite = parse_url(url).get_backend_name() == "sqlite"
    except ValueError as error:
        raise StartupError(f"KTRDR_DATABASE_URL: {error}") from None
    return migrate if migrate is not None else sqlite


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
