"""The API on the real Postgres (a fresh schema per test, a unique NOTIFY channel) with the
in-memory bus, opened by the composition root. A second EventStore on its own engine plays the
projector of another process: its commits reach the API only through Postgres (the rows, and
LISTEN/NOTIFY)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from libs.events.migrate import upgrade_engine
from libs.events.store.port import EventStore
from libs.events.store.sql import SqlEventStore
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.bootstrap import open_stack
from tests.support.auth import AUTH, TEST_KEY
from tests.support.postgres import PG_URL, drop_schema, in_schema, postgres_schema_engine
from tests.unit.api.conftest import FIXTURES, REPO


@dataclass
class PgApi:
    app: FastAPI
    client: httpx.AsyncClient
    store: EventStore  # the API's
    projector: EventStore  # "another process": own engine, no in-process notifier
    settings: ApiSettings


@pytest.fixture
def strategies_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "strategies"
    folder.mkdir()
    shutil.copy(FIXTURES / "tiny_rsi.yaml", folder / "tiny_rsi.yaml")
    return folder


@pytest.fixture
async def pg_api(postgres_available, tmp_path, strategies_dir) -> AsyncIterator[PgApi]:
    schema = f"api_{uuid.uuid4().hex[:12]}"
    channel = f"ktrdr_{uuid.uuid4().hex[:12]}"
    # A long poll: live events must arrive through NOTIFY, not through the safety net.
    settings = ApiSettings(
        database_url=PG_URL,
        broker_url="memory://",
        topology_prefix=f"{schema}.",
        strategies_dir=strategies_dir,
        data_dir=REPO / "data",
        models_dir=tmp_path / "models",
        sse_keepalive_s=30,
        sse_poll_s=30,
        bootstrap_api_key=TEST_KEY,
    )
    other = await postgres_schema_engine(schema)  # creates the schema
    try:
        async with open_stack(
            database=settings,
            broker=settings,
            connect="now",
            channel=channel,
            engine_options={"connect_args": in_schema(schema)},
        ) as stack:
            await upgrade_engine(stack.engine)
            projector = SqlEventStore(other, channel=channel)
            app = create_app(settings, stack=stack)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://api", headers=AUTH
                ) as client,
            ):
                yield PgApi(app, client, stack.store, projector, settings)
    finally:
        await other.dispose()
        await drop_schema(schema)
