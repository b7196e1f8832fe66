"""The API on the composition root's stack with no I/O: the in-memory store and bus, driven through
httpx's ASGITransport (no sockets). Tests feed trainer events straight into the store to simulate
a trainer."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from libs.events.bus.port import EventBus
from libs.events.catalog import Event
from libs.events.notify.port import Notifier
from libs.events.settings import IN_MEMORY_DATABASE_URL
from libs.events.store.port import EventStore
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.bootstrap import open_stack
from tests.support.events import TrainingScript

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    store: EventStore
    notifier: Notifier
    bus: EventBus
    settings: ApiSettings


@pytest.fixture
def strategies_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "strategies"
    folder.mkdir()
    shutil.copy(FIXTURES / "tiny_rsi.yaml", folder / "tiny_rsi.yaml")
    return folder


@pytest.fixture
async def api(tmp_path: Path, strategies_dir: Path) -> AsyncIterator[Api]:
    settings = ApiSettings(
        database_url=IN_MEMORY_DATABASE_URL,
        broker_url="memory://",
        topology_prefix=f"t{uuid.uuid4().hex[:8]}.",
        strategies_dir=strategies_dir,
        data_dir=REPO / "data",
        models_dir=tmp_path / "models",
        sse_keepalive_s=0.2,
        sse_poll_s=5.0,
    )
    async with open_stack(database=settings, broker=settings, connect="now") as stack:
        app = create_app(settings, stack=stack)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                yield Api(app, client, stack.store, stack.notifier, stack.bus, settings)


async def requested(
    store: EventStore,
    *,
    tenant: str = "default",
    strategy: str = "tiny_rsi",
    training_id: str | None = None,
) -> str:
    """Append a TrainingRequested directly (what a valid POST /trainings appends)."""
    script = TrainingScript(
        training_id or str(uuid.uuid4()), tenant=tenant, strategy=strategy, timeframe="1h"
    )
    event = script.requested(strategy={}, symbols=["EURUSD"])
    await store.append([event])
    return script.training_id


def tiny_run(training_id: str, **run: Any) -> list[Event]:
    """A trainer's attempt at the tiny_rsi fixture strategy (`TrainingScript.run`'s options)."""
    return TrainingScript(training_id, strategy="tiny_rsi", timeframe="1h").run(**run)
