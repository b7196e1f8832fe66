"""Event store databases for tests: a private Postgres schema per test on the real server
(127.0.0.1:5432, trust auth), or a SQLite file.

Tests that touch Postgres create their own schema and drop it afterwards, so parallel tests and
leftovers from an interrupted run never meet. An engine made here has the schema on its
search_path, so the migrations and the store use it without knowing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from tests.conftest import POSTGRES_HOST, POSTGRES_PORT

PG_URL = f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test"


def in_schema(schema: str) -> dict[str, Any]:
    """asyncpg connect_args that put `schema` first on the search_path."""
    return {"server_settings": {"search_path": schema}}


async def postgres_schema_engine(schema: str, **kwargs: Any) -> AsyncEngine:
    """An engine whose connections live in `schema` (created here; see drop_schema)."""
    admin = make_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    return make_engine(PG_URL, connect_args=in_schema(schema), **kwargs)


async def drop_schema(schema: str) -> None:
    admin = make_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await admin.dispose()


@asynccontextmanager
async def migrated_postgres(**kwargs: Any) -> AsyncIterator[AsyncEngine]:
    """A migrated event store schema of its own on the real Postgres, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = await postgres_schema_engine(schema, **kwargs)
    try:
        await upgrade_engine(engine)
        yield engine
    finally:
        await engine.dispose()
        await drop_schema(schema)


@asynccontextmanager
async def migrated_sqlite(path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated event store in a SQLite file at `path`."""
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade_engine(engine)
        yield engine
    finally:
        await engine.dispose()
