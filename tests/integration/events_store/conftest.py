"""Store fixtures: a migrated database per test, on SQLite (a temp file) or on the real Postgres
(a fresh schema, dropped afterwards). `store` is parametrised over both backends, so every
contract test runs twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from libs.events.notify import InProcessNotifier
from libs.events.store import EventStore
from tests.conftest import POSTGRES_HOST, POSTGRES_PORT

PG_URL = f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test"


async def postgres_schema_engine(schema: str, **kwargs):
    """An engine whose connections live in `schema` (created here)."""
    admin = make_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    return make_engine(PG_URL, connect_args={"server_settings": {"search_path": schema}}, **kwargs)


async def drop_schema(schema: str) -> None:
    admin = make_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture
async def pg_engine(postgres_available) -> AsyncIterator:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = await postgres_schema_engine(schema, pool_size=12)
    try:
        await upgrade_engine(engine)
        yield engine
    finally:
        await engine.dispose()
        await drop_schema(schema)


@pytest.fixture
async def sqlite_engine(tmp_path) -> AsyncIterator:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ktrdr.db'}")
    try:
        await upgrade_engine(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.integration),
    ]
)
def backend(request) -> str:
    return request.param


@pytest.fixture
def engine(backend, request):
    return request.getfixturevalue("pg_engine" if backend == "postgres" else "sqlite_engine")


@pytest.fixture
def notifier() -> InProcessNotifier:
    return InProcessNotifier()


@pytest.fixture
def store(engine, notifier) -> EventStore:
    # A per-test channel keeps parallel Postgres tests from waking each other.
    return EventStore(engine, notifier=notifier, channel=f"ktrdr_test_{uuid.uuid4().hex[:8]}")
