"""A projector on the composition root's stack with no I/O: the in-memory store and bus. Waits are
on commit notifications or on queue deliveries, each with a deadline."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from libs.events.bus.port import EventBus
from libs.events.bus.topology import Topology
from libs.events.notify.port import Notifier
from libs.events.settings import IN_MEMORY_DATABASE_URL
from libs.events.store.port import EventStore
from services.bootstrap import open_stack
from services.projector.service import ProjectorService
from services.projector.settings import ProjectorSettings
from tests.support.waits import until_committed

DELIVERY_LIMIT = 2


@dataclass
class Projected:
    service: ProjectorService
    store: EventStore
    notifier: Notifier
    bus: EventBus

    async def publish(self, *events: Any) -> None:
        """Publish as the services do: an API event is appended to the log first (by the API)
        and then published (by the relay); the projector folds only trainers' events."""
        api_events = [e for e in events if e.source == "api"]
        if api_events:
            await self.store.append(api_events)
        await self.bus.publish_many(list(events))

    async def until(self, check: Callable[[], Any], within_s: float = 10.0) -> Any:
        """Re-evaluate the async `check` after every commit until it returns something truthy."""
        return await until_committed(self.notifier, check, within_s=within_s)

    async def until_stored(self, count: int, within_s: float = 10.0) -> None:
        async def enough() -> bool:
            return len(await self.store.read_all(0, 100_000)) >= count

        await self.until(enough, within_s)


@pytest.fixture
async def projected() -> AsyncIterator[Projected]:
    prefix = f"p{uuid.uuid4().hex[:8]}."
    settings = ProjectorSettings(
        database_url=IN_MEMORY_DATABASE_URL,
        broker_url="memory://",
        topology_prefix=prefix,
        projector_linger_ms=0.5,
        projector_retry_min_s=0.01,
    )
    topology = Topology(prefix=prefix, delivery_limit=DELIVERY_LIMIT)
    async with open_stack(database=settings, broker=settings, topology=topology) as stack:
        service = ProjectorService(settings, stack.store, stack.bus, probe=stack.ping_database)
        await service.start()
        try:
            yield Projected(service, stack.store, stack.notifier, stack.bus)
        finally:
            await service.stop(grace_s=1.0)
