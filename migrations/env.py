"""Alembic environment (async). The only way the schema changes (architecture.md §2).

Two ways in:
- `config.attributes["connection"]`: a sync Connection handed over by `libs.events.migrate`
  (from `AsyncConnection.run_sync`) — used by `ktrdr up` and by tests that migrate a schema
  on their own engine;
- otherwise an engine is built from the `sqlalchemy.url` option, or KTRDR_DATABASE_URL, with the
  project's engine factory (so SQLite gets WAL + foreign keys).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from libs.events.columns import UTCDateTime
from libs.events.db import make_engine
from libs.events.settings import DatabaseSettings
from libs.events.tables import metadata

config = context.config
# The CLI wants Alembic's "Running upgrade ..." lines; an embedding caller keeps its logging.
if config.config_file_name and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # Migrations stay self-contained: render our TypeDecorator as the plain type it stores.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite DDL is transactional too here (db.py lets SQLAlchemy emit BEGIN itself).
        transactional_ddl=True,
        render_item=_render_item,
        # SQLite cannot ALTER most things: future migrations get batch (copy-and-move) mode.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or DatabaseSettings().database_url


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _run(given)
else:
    asyncio.run(_run_async(_url()))
