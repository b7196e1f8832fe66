"""A migrated event store per test, on SQLite (a temp file) and on the real Postgres (a fresh
schema, dropped afterwards). `store` (and `engine`) are parametrised over both backends, so a
test that asks for them runs twice; folders with their own rig (api, projector, ...) define
their own fixtures and never see these."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.events.notify.inprocess import InProcessNotifier
from libs.events.store.sql import SqlEventStore
from tests.support.postgres import migrated_postgres, migrated_sqlite


@pytest.fixture
async def pg_engine(postgres_available) -> AsyncIterator[AsyncEngine]:
    # Room for the contract tests that run several appends at once.
    async with migrated_postgres(pool_size=12) as engine:
        yield engine


@pytest.fixture
async def sqlite_engine(tmp_path) -> AsyncIterator[AsyncEngine]:
    async with migrated_sqlite(tmp_path / "ktrdr.db") as engine:
        yield engine


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
