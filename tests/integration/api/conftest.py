"""The API on the real Postgres (a fresh schema per test, a unique NOTIFY channel) with the
in-memory bus. A second EventStore on its own engine plays the projector of another process:
its commits reach the API only through Postgres (the rows, and LISTEN/NOTIFY)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from libs.events.bus import Topology
from libs.events.bus.memory import InMemoryBus
from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from libs.events.notify_pg import PostgresNotifier
from libs.events.store import EventStore
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.support.postgres import PG_URL, drop_schema, in_schema, postgres_schema_engine
from tests.unit.api.conftest import FIXTURES, REPO


@dataclass
class PgApi:
    app: Any
    client: httpx.AsyncClient
    store: EventStore  # the API's
    projector: EventStore  # "another process": own engine, no in-process notifier
    settings: ApiSettings


@pytest.fixture
async def pg_api(postgres_available, tmp_path) -> AsyncIterator[PgApi]:
    schema = f"api_{uuid.uuid4().hex[:12]}"
    channel = f"ktrdr_{uuid.uuid4().hex[:12]}"
    engine = await postgres_schema_engine(schema)
    other = make_engine(PG_URL, connect_args=in_schema(schema))
    notifier = PostgresNotifier(PG_URL, channel=channel, server_settings={"search_path": schema})
    try:
        await upgrade_engine(engine)
        await notifier.start()
        store = EventStore(engine, notifier=notifier, channel=channel)
        projector = EventStore(other, channel=channel)
        bus = InMemoryBus(Topology(prefix=f"{schema}."))
        await bus.start()
        strategies = tmp_path / "strategies"
        strategies.mkdir()
        (strategies / "tiny_rsi.yaml").write_text((FIXTURES / "tiny_rsi.yaml").read_text())
        # A long poll: live events must arrive through NOTIFY, not through the safety net.
        settings = ApiSettings(
            database_url=PG_URL,
            strategies_dir=strategies,
            data_dir=REPO / "data",
            models_dir=tmp_path / "models",
            sse_keepalive_s=30,
            sse_poll_s=30,
        )
        app = create_app(settings, store=store, notifier=notifier, bus=bus, run_relay=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api"
            ) as client,
        ):
            yield PgApi(app, client, store, projector, settings)
        await bus.close()
    finally:
        await notifier.stop()
        await engine.dispose()
        await other.dispose()
        await drop_schema(schema)
