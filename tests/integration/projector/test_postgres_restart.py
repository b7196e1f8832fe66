"""A real Postgres restart under the projector (a private cluster, stopped and started again)
while events keep arriving on the real RabbitMQ: nothing is acked while the database is down,
nothing is lost, nothing is stored twice, and the projector recovers by itself."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest

from libs.events.bus.amqp.adapter import AmqpBus
from libs.events.bus.amqp.topology import delete_topology
from libs.events.bus.topology import Topology
from libs.events.migrate import upgrade_engine
from libs.events.readmodels.trainings import COMPLETED
from services.bootstrap import open_stack
from services.projector.service import ProjectorService
from services.projector.settings import ProjectorSettings
from tests.contract.conftest import AMQP_URL
from tests.support.events import TrainingScript
from tests.support.private_servers import PrivatePostgres, server_bin

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(server_bin() is None, reason="PostgreSQL server binaries not installed"),
]


@pytest.fixture
def cluster():
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


async def test_the_projector_survives_a_postgres_restart(cluster, rabbitmq_available):
    topology = Topology(prefix=f"it.pgrestart.{uuid.uuid4().hex[:8]}.")
    settings = ProjectorSettings(
        database_url=cluster.url,
        broker_url=AMQP_URL,
        topology_prefix=topology.prefix,
        projector_retry_min_s=0.05,
        projector_retry_max_s=0.5,
    )
    publisher = AmqpBus(AMQP_URL, topology, connection_name="it-pg-restart-pub")
    script = TrainingScript(f"it-{uuid.uuid4().hex[:8]}")
    request = script.requested()  # appended by the API; the projector folds trainers' events
    events = script.run(epochs=3, batches=20)
    half = len(events) // 2
    try:
        async with open_stack(
            database=settings,
            broker=settings,
            notifier=False,
            engine_options={"connect_args": {"timeout": 5, "command_timeout": 5}},
        ) as stack:
            await upgrade_engine(stack.engine)
            store = stack.store
            await store.append([request])
            service = ProjectorService(settings, store, stack.bus, probe=stack.ping_database)
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
                assert committer.pending > 0

                await asyncio.to_thread(cluster.start)
                await committer.wait_until(lambda stats: stats.events >= len(events), 60)
                stored = await store.read_stream(script.training_id)
                assert [s.event.event_id for s in stored] == [
                    e.event_id for e in (request, *events)
                ]
                state = await store.get_training(script.training_id)
                assert state.status == COMPLETED and state.epoch == 3
            finally:
                await service.stop(grace_s=2)
    finally:
        await publisher.close()
        connection = await aio_pika.connect(AMQP_URL)
        await delete_topology(await connection.channel(), topology)
        await connection.close()
