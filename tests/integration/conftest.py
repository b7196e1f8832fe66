"""A migrated event store per test, on SQLite (a temp file) and on the real Postgres (a fresh
schema, dropped afterwards). `store` (and `engine`) are parametrised over both backends, so a
test that asks for them runs twice; folders with their own rig (api, projector, ...) define
their own fixtures and never see these."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from libs.events.notify.inprocess import InProcessNotifier
from libs.events.store.sql import SqlEventStore
from tests.support.postgres import drop_schema, postgres_schema_engine


@pytest.fixture
async def pg_engine(postgres_available) -> AsyncIterator[AsyncEngine]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    # Room for the contract tests that run several appends at once.
    engine = await postgres_schema_engine(schema, pool_size=12)
    try:
        await upgrade_engine(engine)
        yield engine
    finally:
        await engine.dispose()
        await drop_schema(schema)


@pytest.fixture
async def sqlite_engine(tmp_path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ktrdr.db'}")
    try:
        await upgrade_engine(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def backend(request) -> str:
    return request.param


@pytest.fixture
def engine(backend, request) -> AsyncEngine:
    return request.getfixturevalue("pg_engine" if backend == "postgres" else "sqlite_engine")


@pytest.fixture
def notifier() -> InProcessNotifier:
    return InProcessNotifier()


@pytest.fixture
def store(engine, notifier) -> SqlEventStore:
    # A per-test channel keeps parallel Postgres tests from waking each other.
    return SqlEventStore(engine, notifier=notifier, channel=f"ktrdr_test_{uuid.uuid4().hex[:8]}")
