"""A real Postgres restart under the projector (a private cluster, stopped and started again)
while events keep arriving on the real RabbitMQ: nothing is acked while the database is down,
nothing is lost, nothing is stored twice, and the projector recovers by itself."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import aio_pika
import pytest

from libs.events.bus.amqp.adapter import AmqpBus
from libs.events.bus.amqp.topology import delete_topology
from libs.events.bus.topology import Topology
from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from libs.events.samples import TrainingScript
from libs.events.state import COMPLETED
from libs.events.store import EventStore
from services.projector.service import ProjectorService
from services.projector.settings import ProjectorSettings
from tests.contract.conftest import AMQP_URL
from tests.integration.projector.private_postgres import PrivatePostgres, server_bin

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(server_bin() is None, reason="PostgreSQL server binaries not installed"),
]


@pytest.fixture
def cluster():
    server = PrivatePostgres(Path(tempfile.mkdtemp(prefix="ktrdr-pg-")))
    server.start()
    try:
        yield server
    finally:
        server.destroy()


async def test_the_projector_survives_a_postgres_restart(cluster, rabbitmq_available):
    engine = make_engine(cluster.url, connect_args={"timeout": 5, "command_timeout": 5})
    await upgrade_engine(engine)
    store = EventStore(engine)
    topology = Topology(prefix=f"it.pgrestart.{uuid.uuid4().hex[:8]}.")
    bus = AmqpBus(AMQP_URL, topology, connection_name="it-pg-restart")
    publisher = AmqpBus(AMQP_URL, topology, connection_name="it-pg-restart-pub")
    service = ProjectorService(
        ProjectorSettings(projector_retry_min_s=0.05, projector_retry_max_s=0.5), store, bus
    )
    script = TrainingScript(f"it-{uuid.uuid4().hex[:8]}")
    events = [script.requested(), *script.run(epochs=3, batches=20)]
    half = len(events) // 2
    try:
        await publisher.start()
        await service.start()
        await publisher.publish_many(events[:half])
        committer = service.committer
        await committer.wait_until(lambda stats: stats.events >= half, 30)

        await asyncio.to_thread(cluster.stop)  # fast shutdown: sessions are terminated
        await publisher.publish_many(events[half:])
        retries = committer.stats.retries
        await committer.wait_until(lambda stats: stats.retries >= retries + 3, 30)
        assert committer.stats.events == half  # nothing committed, so nothing acked
        assert len(committer._in_flight) + len(committer._waiting) > 0

        await asyncio.to_thread(cluster.start)
        await committer.wait_until(lambda stats: stats.events >= len(events), 60)
        stored = await store.read_stream(script.training_id)
        assert [s.event.event_id for s in stored] == [e.event_id for e in events]
        state = await store.get_training(script.training_id)
        assert state.status == COMPLETED and state.epoch == 3
    finally:
        await service.stop(grace_s=2)
        await bus.close()
        await publisher.close()
        connection = await aio_pika.connect(AMQP_URL)
        await delete_topology(await connection.channel(), topology)
        await connection.close()
        await engine.dispose()
