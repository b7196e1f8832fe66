"""The whole service as real processes on the real Postgres + RabbitMQ (module-scoped: started
once for the tests of a module): a fresh database migrated with `ktrdr db upgrade`, a unique
topology prefix, `ktrdr api`, `ktrdr projector` and two `ktrdr trainer`s, a tmp models dir.
Everything is stopped, deleted and dropped afterwards."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_HOST, POSTGRES_PORT, RABBIT_HOST, RABBIT_PORT
from tests.e2e.harness import FIXTURES, REPO, Process, base_env, diagnose, free_port, migrate

PG_ADMIN_DSN = f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"
AMQP_URL = f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/"
TRAINERS = ("e2e-trainer-a", "e2e-trainer-b")


@dataclass
class Cluster:
    api_url: str
    database_url: str
    prefix: str
    models_dir: Path
    processes: list[Process]

    def diagnose(self) -> str:
        return diagnose(self.processes)


@pytest.fixture(scope="module")
def cluster(postgres_available, rabbitmq_available, tmp_path_factory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("e2e")
    database = f"e2e_{uuid.uuid4().hex[:12]}"
    database_url = f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"
    prefix = f"e2e.{uuid.uuid4().hex[:10]}."
    port = free_port()
    (work / "strategies").mkdir()
    shutil.copy(FIXTURES / "e2e_tiny.yaml", work / "strategies" / "e2e_tiny.yaml")
    env = base_env(
        KTRDR_DATABASE_URL=database_url,
        KTRDR_BROKER_URL=AMQP_URL,
        KTRDR_TOPOLOGY_PREFIX=prefix,
        KTRDR_MODELS_DIR=str(work / "models"),
        KTRDR_DATA_DIR=str(REPO / "data"),
        KTRDR_STRATEGIES_DIR=str(work / "strategies"),
        KTRDR_TORCH_THREADS="1",  # two trainers on a small machine
        KTRDR_HEARTBEAT_INTERVAL_S="1",
        KTRDR_BATCH_PROGRESS_INTERVAL_S="0.05",
        KTRDR_SSE_KEEPALIVE_S="5",
    )
    asyncio.run(create_database(database))
    processes: list[Process] = []
    try:
        migrate(env, work)
        processes.append(Process("api", ["api", "--port", str(port)], env=env, cwd=work, logs=work))
        processes.append(Process("projector", ["projector"], env=env, cwd=work, logs=work))
        for trainer_id in TRAINERS:
            processes.append(
                Process(
                    trainer_id,
                    ["trainer"],
                    cwd=work,
                    logs=work,
                    env={**env, "KTRDR_TRAINER_ID": trainer_id, "KTRDR_DEVICE": "cpu"},
                )
            )
        cluster = Cluster(
            f"http://127.0.0.1:{port}", database_url, prefix, work / "models", processes
        )
        asyncio.run(_until_serving(cluster))
        yield cluster
    finally:
        for process in processes:
            process.stop()
        asyncio.run(delete_topology(prefix))
        asyncio.run(drop_database(database))


async def _until_serving(cluster: Cluster) -> None:
    """The API is ready, and both trainers' heartbeats went trainer → RabbitMQ → projector →
    Postgres (so the trainers consume and the projector folds)."""
    from libs.events.settings import DatabaseSettings
    from services.bootstrap import open_stack
    from tests.e2e.harness import wait_ready

    await wait_ready(cluster.api_url, cluster.processes)
    database = DatabaseSettings(database_url=cluster.database_url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    async with open_stack(database=database, notifier=False) as stack:
        while {t.trainer_id for t in await stack.store.list_trainers()} < set(TRAINERS):
            for process in cluster.processes:
                process.check_alive()
            if loop.time() > deadline:
                raise AssertionError(
                    f"trainers never seen in the trainers table\n{cluster.diagnose()}"
                )
            await asyncio.sleep(0.2)  # heartbeats are not notified: look at the table again


async def create_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_topology(prefix: str) -> None:
    import aio_pika

    from libs.events.bus.amqp.topology import delete_topology as delete
    from libs.events.bus.topology import Topology

    connection = await aio_pika.connect(AMQP_URL)
    try:
        await delete(await connection.channel(), Topology(prefix=prefix))
    finally:
        await connection.close()
