"""A projector on SQLite (a tmp file, migrated by the real Alembic scripts) and the in-memory bus.
Waits are on commit notifications or on queue deliveries, each with a deadline."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from libs.events.bus import Topology
from libs.events.bus.memory.adapter import InMemoryBus
from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from libs.events.notify.inprocess import InProcessNotifier
from libs.events.store import EventStore
from services.projector.service import ProjectorService
from services.projector.settings import ProjectorSettings
from tests.support.waits import until_committed

DELIVERY_LIMIT = 2


@dataclass
class Projected:
    service: ProjectorService
    store: EventStore
    notifier: InProcessNotifier
    bus: InMemoryBus

    async def publish(self, *events: Any) -> None:
        await self.bus.publish_many(list(events))

    async def until(self, check: Callable[[], Any], within_s: float = 10.0) -> Any:
        """Re-evaluate the async `check` after every commit until it returns something truthy."""
        return await until_committed(self.notifier, check, within_s=within_s)

    async def until_stored(self, count: int, within_s: float = 10.0) -> None:
        async def enough() -> bool:
            return len(await self.store.read_all(0, 100_000)) >= count

        await self.until(enough, within_s)


@pytest.fixture
async def projected(tmp_path) -> AsyncIterator[Projected]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ktrdr.db'}")
    await upgrade_engine(engine)
    notifier = InProcessNotifier()
    store = EventStore(engine, notifier=notifier)
    bus = InMemoryBus(Topology(prefix=f"p{uuid.uuid4().hex[:8]}.", delivery_limit=DELIVERY_LIMIT))
    settings = ProjectorSettings(projector_linger_ms=0.5, projector_retry_min_s=0.01)
    service = ProjectorService(settings, store, bus)
    await service.start()
    try:
        yield Projected(service, store, notifier, bus)
    finally:
        await service.stop(grace_s=1.0)
        await bus.close()
        await engine.dispose()
