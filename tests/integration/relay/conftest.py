"""Relay fixtures: a migrated store on SQLite (temp file) and on Postgres (own schema)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from libs.events.notify import InProcessNotifier
from libs.events.store import EventStore
from tests.integration.events_store.conftest import drop_schema, postgres_schema_engine


@pytest.fixture
async def pg_engine(postgres_available) -> AsyncIterator:
    schema = f"relay_{uuid.uuid4().hex[:12]}"
    engine = await postgres_schema_engine(schema, pool_size=8)
    try:
        await upgrade_engine(engine)
        yield engine
    finally:
        await engine.dispose()
        await drop_schema(schema)


@pytest.fixture
async def sqlite_engine(tmp_path) -> AsyncIterator:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    try:
        await upgrade_engine(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request):
    return request.getfixturevalue("pg_engine" if request.param == "postgres" else "sqlite_engine")


@pytest.fixture
def notifier() -> InProcessNotifier:
    return InProcessNotifier()


@pytest.fixture
def store(engine, notifier) -> EventStore:
    return EventStore(engine, notifier=notifier, channel=f"ktrdr_relay_{uuid.uuid4().hex[:8]}")
