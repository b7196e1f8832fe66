"""create_app(settings) on its own, on a migrated SQLite file: the lifespan opens the composition
root's stack (store, notifier, in-memory bus) from the settings and runs the outbox relay, so a
submitted request reaches the trainers' queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.support.auth import AUTH, TEST_KEY
from tests.unit.api.conftest import REPO


async def test_standalone_app_relays_submissions_to_the_bus(
    tmp_path: Path, strategies_dir: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    engine = make_engine(url)
    await upgrade_engine(engine)
    await engine.dispose()
    settings = ApiSettings(
        database_url=url,
        broker_url="memory://",
        topology_prefix="sa.",
        strategies_dir=strategies_dir,
        data_dir=REPO / "data",
        models_dir=tmp_path / "models",
        bootstrap_api_key=TEST_KEY,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        parts = app.state.components
        received: asyncio.Queue = asyncio.Queue()

        async def handler(delivery) -> None:
            await received.put(delivery.event)

        await asyncio.wait_for(parts.bus_ready.wait(), 5)
        sub = await parts.bus.consume(parts.bus.topology.trainer_queue("any"), handler)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", headers=AUTH
        ) as client:
            assert (await client.get("/readyz")).status_code == 200
            r = await client.post("/api/v1/trainings", json={"strategy": "tiny_rsi"})
            assert r.status_code == 202, r.text
        event = await asyncio.wait_for(received.get(), 5)
        assert event.training_id == r.json()["training_id"]
        assert event.type == "TrainingRequested"
        await sub.stop()
    assert app.state.components is None
