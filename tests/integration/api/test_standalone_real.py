"""`create_app(settings)` on the real Postgres and RabbitMQ, the way `ktrdr api` runs it: the
lifespan builds engine, PostgresNotifier, store, aio-pika bus and relay from the URLs alone.
A submission lands on the trainers' quorum queue; /readyz checks all four dependencies."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.conftest import POSTGRES_HOST, POSTGRES_PORT, RABBIT_HOST, RABBIT_PORT
from tests.support.auth import AUTH, TEST_KEY
from tests.unit.api.conftest import FIXTURES, REPO

pytestmark = pytest.mark.integration
SERVER = f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}"


@pytest.fixture
async def fresh_database(postgres_available):
    name = f"ktrdr_api_{uuid.uuid4().hex[:10]}"
    admin = make_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{SERVER}/{name}"
    try:
        engine = make_engine(url)
        await upgrade_engine(engine)
        await engine.dispose()
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_standalone_app_on_postgres_and_rabbitmq(
    fresh_database: str, rabbitmq_available, tmp_path: Path
) -> None:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "tiny_rsi.yaml").write_text((FIXTURES / "tiny_rsi.yaml").read_text())
    settings = ApiSettings(
        database_url=fresh_database,
        broker_url=f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/",
        topology_prefix=f"api{uuid.uuid4().hex[:8]}.",
        strategies_dir=tmp_path / "strategies",
        data_dir=REPO / "data",
        models_dir=tmp_path / "models",
        bootstrap_api_key=TEST_KEY,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        parts = app.state.components
        await asyncio.wait_for(parts.bus_ready.wait(), 15)
        received: asyncio.Queue = asyncio.Queue()

        async def handler(delivery) -> None:
            await received.put(delivery.event)

        sub = await parts.bus.consume(parts.bus.topology.trainer_queue("any"), handler)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api", headers=AUTH
            ) as client:
                ready = await client.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert set(ready.json()["checks"]) == {
                    "database",
                    "migrations",
                    "broker",
                    "notifications",
                }
                r = await client.post(
                    "/api/v1/trainings",
                    json={"strategy": "tiny_rsi"},
                    headers={"Idempotency-Key": "once"},
                )
                assert r.status_code == 202, r.text
            event = await asyncio.wait_for(received.get(), 15)
            assert event.training_id == r.json()["training_id"]
        finally:
            await sub.stop()
            await parts.bus.delete_topology()
