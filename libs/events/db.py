"""Engines for the event store: PostgreSQL (asyncpg) or SQLite (aiosqlite, embedded mode).

Built by composition roots (`make_engine(settings.database_url)`), never at import time.

SQLite needs three things the driver does not do by itself:
- WAL journal (readers never block the single writer), foreign keys on, a busy timeout so a
  second process waits for the write lock instead of failing at once;
- transactions that SQLAlchemy controls: pysqlite/aiosqlite's own implicit BEGIN is switched off
  and we emit BEGIN ourselves, so a writer can ask for `BEGIN IMMEDIATE` (take the write lock at
  the start of the transaction, not at its first write — the store's append relies on it);
- the database folder must exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic_core
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

from libs.events.settings import DEFAULT_DATABASE_URL

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option a writer sets on its connection to get BEGIN IMMEDIATE on SQLite.
SQLITE_BEGIN_IMMEDIATE = "ktrdr_sqlite_begin_immediate"

SUPPORTED_DRIVERS = ("postgresql+asyncpg", "sqlite+aiosqlite")


def parse_url(url: str | URL) -> URL:
    parsed = make_url(url)
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise ValueError(
            f"database URL driver {parsed.drivername!r} is not supported; "
            f"use one of {', '.join(SUPPORTED_DRIVERS)} (e.g. {DEFAULT_DATABASE_URL})"
        )
    return parsed


def is_sqlite(bind: AsyncEngine | AsyncConnection) -> bool:
    return bind.dialect.name == "sqlite"


def json_dumps(value: Any) -> str:
    # Postgres JSON rejects NaN/Infinity (a diverging loss is a real value): write them as the
    # strings "NaN"/"Infinity", which pydantic reads back into float fields as nan/inf.
    return pydantic_core.to_json(value, inf_nan_mode="strings").decode()


def make_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An AsyncEngine for a postgresql+asyncpg:// or sqlite+aiosqlite:// URL.

    Extra kwargs go to `create_async_engine` (e.g. `connect_args={"server_settings":
    {"search_path": schema}}` for a per-test Postgres schema).
    """
    parsed = parse_url(url)
    # pydantic-core's Rust JSON is several times faster than the stdlib on the read path.
    kwargs.setdefault("json_serializer", json_dumps)
    kwargs.setdefault("json_deserializer", pydantic_core.from_json)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    pre_ping = kwargs.pop("pool_pre_ping", True)
    engine = create_async_engine(parsed, **kwargs)
    if pre_ping:
        event.listen(engine.sync_engine, "checkout", _ping_on_checkout)
    return engine


def _ping_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """The pool's pre-ping in one round trip. SQLAlchemy's own (`pool_pre_ping`) wraps its ping
    in BEGIN ... ROLLBACK on asyncpg (for pgbouncer's transaction mode, which we do not use):
    three round trips before every pooled statement. A dead connection is replaced, as there."""
    try:
        await_only(dbapi_connection.driver_connection.fetchrow(";"))
    except Exception as error:  # noqa: BLE001 - any failure means this connection is unusable
        raise exc.DisconnectionError(f"pre-ping failed: {error!r}") from error


def _sqlite_engine(url: URL, **kwargs: Any) -> AsyncEngine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **kwargs)
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: SQLAlchemy's "begin" hook below emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fsync at checkpoints
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(SQLITE_BEGIN_IMMEDIATE)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class DatabaseMissing(Exception):
    """The server answers, but the database the URL names does not exist on it."""


async def check_database(url: str | URL, *, create: bool = False) -> bool:
    """Connect to the database `url` names; True if it was created here. A Postgres database
    that does not exist raises DatabaseMissing, or is created (`create`) from the server's
    `postgres` database. SQLite creates its file by itself. Other failures (refused, wrong
    password) raise as they are."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return False
    engine = make_engine(parsed)
    try:
        async with engine.connect():
            return False
    except Exception as error:
        if not _names_missing_database(error):
            raise
        name = parsed.database or ""
        if not create:
            raise DatabaseMissing(
                f"database {name!r} does not exist on {parsed.host}:{parsed.port or 5432}"
            ) from None
    finally:
        await engine.dispose()
    admin = make_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            quoted = name.replace('"', '""')
            await conn.exec_driver_sql(f'CREATE DATABASE "{quoted}"')
    finally:
        await admin.dispose()
    return True


def _names_missing_database(error: BaseException) -> bool:
    current: BaseException | None = error
    while current is not None:
        if type(current).__name__ == "InvalidCatalogNameError":  # asyncpg's, SQLSTATE 3D000
            return True
        if getattr(current, "sqlstate", None) == "3D000":
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False
