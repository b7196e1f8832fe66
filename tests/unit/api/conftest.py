"""The API on the composition root's stack with no I/O: the in-memory store and bus, driven through
httpx's ASGITransport (no sockets). Tests feed trainer events straight into the store to simulate
a trainer.

`api.client` authenticates as a trainer-user of tenant "default"; `api.client_as(role, tenant)`
gives a client with another key. Keys are hashed once per test session (scrypt is slow on
purpose) and stored in each test's fresh store."""

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
from libs.events.store.apikeys import ApiKeyRecord
from libs.events.store.port import EventStore
from services.api.apikeys import generate_key, new_record
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.bootstrap import open_stack
from tests.support.events import TrainingScript

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


_KEYS: dict[tuple[str, str], tuple[str, ApiKeyRecord]] = {}


def session_key(role: str = "trainer-user", tenant: str = "default") -> tuple[str, ApiKeyRecord]:
    """One key per (role, tenant) for the whole session: (the key, its row)."""
    if (role, tenant) not in _KEYS:
        key = generate_key()
        _KEYS[role, tenant] = (key, new_record(key, tenant=tenant, role=role, name=f"{role}"))
    return _KEYS[role, tenant]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    store: EventStore
    notifier: Notifier
    bus: EventBus
    settings: ApiSettings

    async def key(self, role: str = "trainer-user", tenant: str = "default") -> str:
        """A key of this role and tenant, stored in this test's store."""
        key, record = session_key(role, tenant)
        if await self.store.api_key(record.key_id) is None:
            await self.store.add_api_key(record)
        return key

    async def client_as(self, role: str, tenant: str = "default") -> httpx.AsyncClient:
        """Another client on the same app (closed with the fixture), with its own key."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://api",
            headers=bearer(await self.key(role, tenant)),
        )
        self._extra.append(client)
        return client

    def __post_init__(self) -> None:
        self._extra: list[httpx.AsyncClient] = []


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
        artifacts_url=str(tmp_path / "artifacts"),
        sse_keepalive_s=0.2,
        sse_key_recheck_s=0.2,
        sse_poll_s=5.0,
    )
    async with open_stack(database=settings, broker=settings, connect="now") as stack:
        key, record = session_key()
        await stack.store.add_api_key(record)
        app = create_app(settings, stack=stack)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://api", headers=bearer(key)
            ) as client:
                rig = Api(app, client, stack.store, stack.notifier, stack.bus, settings)
                try:
                    yield rig
                finally:
                    for extra in rig._extra:
                        await extra.aclose()


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
