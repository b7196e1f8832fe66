"""The projector on the real Postgres (a fresh schema, reached through a cuttable proxy) and the
real RabbitMQ (a unique topology prefix, deleted afterwards). The test publishes through its own
connection and waits on LISTEN/NOTIFY (direct, not through the proxy) with deadlines."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest

from libs.events.bus.amqp.adapter import AmqpBus
from libs.events.bus.amqp.topology import delete_topology
from libs.events.bus.topology import Topology
from libs.events.migrate import upgrade_engine
from libs.events.notify.postgres import PostgresNotifier
from libs.events.store.port import EventStore
from libs.events.store.sql import SqlEventStore
from services.bootstrap import open_stack
from services.projector.service import ProjectorService
from services.projector.settings import ProjectorSettings
from tests.conftest import POSTGRES_HOST, POSTGRES_PORT
from tests.contract.conftest import AMQP_URL
from tests.integration.projector.proxy import CuttableProxy
from tests.support.postgres import PG_URL, drop_schema, postgres_schema_engine
from tests.support.waits import until_committed

DELIVERY_LIMIT = 1


@dataclass
class Rig:
    service: ProjectorService
    store: EventStore  # the projector's, through the proxy
    direct: EventStore  # the test's own view, straight to Postgres
    notifier: PostgresNotifier
    publisher: AmqpBus
    proxy: CuttableProxy
    topology: Topology

    async def until(self, check: Callable[[], Any], within_s: float = 20.0) -> Any:
        """Re-evaluate the async `check` after every commit until it returns something truthy."""
        return await until_committed(self.notifier, check, within_s=within_s, recheck_s=1.0)

    async def until_stored(self, count: int, within_s: float = 20.0) -> None:
        async def enough() -> bool:
            return (
                await self.direct.max_position() >= count
                and len(await self.direct.read_all(0, 1_000_000)) >= count
            )

        await self.until(enough, within_s)


@pytest.fixture
async def rig(postgres_available, rabbitmq_available) -> AsyncIterator[Rig]:
    schema = f"proj_{uuid.uuid4().hex[:12]}"
    channel = f"ktrdr_{uuid.uuid4().hex[:12]}"
    topology = Topology(prefix=f"it.proj.{uuid.uuid4().hex[:10]}.", delivery_limit=DELIVERY_LIMIT)
    direct_engine = await postgres_schema_engine(schema)
    await upgrade_engine(direct_engine)
    proxy = CuttableProxy(POSTGRES_HOST, POSTGRES_PORT)
    await proxy.start()
    proxied_url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/test"
    notifier = PostgresNotifier(PG_URL, channel=channel, server_settings={"search_path": schema})
    await notifier.start()
    direct = SqlEventStore(direct_engine, channel=channel)
    publisher = AmqpBus(AMQP_URL, topology, connection_name="it-projector-publisher")
    settings = ProjectorSettings(
        database_url=proxied_url,
        broker_url=AMQP_URL,
        topology_prefix=topology.prefix,
        projector_retry_min_s=0.05,
        projector_retry_max_s=0.5,
        projector_linger_ms=1,
    )
    try:
        # A short command timeout: a connection cut mid-query must fail fast, not hang.
        async with open_stack(
            database=settings,
            broker=settings,
            notifier=False,
            topology=topology,
            channel=channel,
            engine_options={
                "connect_args": {
                    "server_settings": {"search_path": schema},
                    "command_timeout": 5,
                    "timeout": 5,
                }
            },
        ) as stack:
            service = ProjectorService(settings, stack.store, stack.bus, probe=stack.ping_database)
            try:
                await publisher.start()
                await service.start()
                yield Rig(service, stack.store, direct, notifier, publisher, proxy, topology)
            finally:
                proxy.restore()
                await service.stop(grace_s=2)
    finally:
        await publisher.close()
        connection = await aio_pika.connect(AMQP_URL)
        await delete_topology(await connection.channel(), topology)
        await connection.close()
        await notifier.stop()
        await proxy.close()
        await direct_engine.dispose()
        await drop_schema(schema)
