"""The API on SQLite (a tmp file, migrated with the real Alembic scripts) + the in-memory bus,
driven through httpx's ASGITransport (no sockets). Tests feed trainer events straight into the
store to simulate a trainer."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.events.bus import Topology
from libs.events.bus.memory import InMemoryBus
from libs.events.catalog import TrainingRequested
from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from libs.events.notify import InProcessNotifier
from libs.events.store import EventStore
from services.api.app import create_app
from services.api.settings import ApiSettings

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass
class Api:
    app: Any
    client: httpx.AsyncClient
    store: EventStore
    notifier: InProcessNotifier
    bus: InMemoryBus
    settings: ApiSettings


@pytest.fixture
def strategies_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "strategies"
    folder.mkdir()
    shutil.copy(FIXTURES / "tiny_rsi.yaml", folder / "tiny_rsi.yaml")
    return folder


@pytest.fixture
async def api(tmp_path: Path, strategies_dir: Path) -> AsyncIterator[Api]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ktrdr.db'}"
    engine = make_engine(url)
    await upgrade_engine(engine)
    notifier = InProcessNotifier()
    store = EventStore(engine, notifier=notifier)
    bus = InMemoryBus(Topology(prefix=f"t{uuid.uuid4().hex[:8]}."))
    await bus.start()
    settings = ApiSettings(
        database_url=url,
        strategies_dir=strategies_dir,
        data_dir=REPO / "data",
        models_dir=tmp_path / "models",
        sse_keepalive_s=0.2,
        sse_poll_s=5.0,
    )
    app = create_app(settings, store=store, notifier=notifier, bus=bus, run_relay=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Api(app, client, store, notifier, bus, settings)
    await bus.close()
    await engine.dispose()


async def requested(
    store: EventStore,
    *,
    tenant: str = "default",
    strategy: str = "tiny_rsi",
    training_id: str | None = None,
) -> str:
    """Append a TrainingRequested directly (what a valid POST /trainings appends)."""
    event = TrainingRequested(
        training_id=training_id or str(uuid.uuid4()),
        tenant=tenant,
        source="api",
        strategy_name=strategy,
        strategy={},
        symbols=["EURUSD"],
        timeframes=["1h"],
    )
    await store.append([event])
    return event.training_id
