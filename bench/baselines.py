"""The raw baselines every other figure is read against: `.venv/bin/python bench/baselines.py`.

  1. a Postgres round trip (asyncpg `SELECT 1`) and a durable one-row commit, p50 / p99;
  2. a RabbitMQ round trip: publish with confirms to a queue of our own and receive it back on
     a consumer of the same connection, p50 / p99 (aio-pika, a classic queue, then a quorum
     queue as the service's queues are);
Nothing of the service runs here. KTRDR_BENCH_PG_URL / KTRDR_BENCH_AMQP pick the servers.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.events.notify.postgres import asyncpg_dsn  # noqa: E402

PG_URL = os.environ.get(
    "KTRDR_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
AMQP = os.environ.get("KTRDR_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
SAMPLES = 300


def p50_p99(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"


async def postgres() -> None:
    conn = await asyncpg.connect(asyncpg_dsn(PG_URL))
    table = f"baseline_{uuid.uuid4().hex[:8]}"
    try:
        await conn.execute(f"CREATE TABLE {table} (a int)")
        trips, commits = [], []
        for _ in range(SAMPLES):
            began = time.perf_counter()
            await conn.fetchval("SELECT 1")
            trips.append(time.perf_counter() - began)
            began = time.perf_counter()
            await conn.execute(f"INSERT INTO {table} VALUES (1)")
            commits.append(time.perf_counter() - began)
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()
    print(f"  Postgres round trip (SELECT 1)          {p50_p99(trips)}")
    print(f"  Postgres durable one-row commit         {p50_p99(commits)}")


async def broker(queue_type: str) -> None:
    connection = await aio_pika.connect(AMQP)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            f"baseline.{uuid.uuid4().hex[:8]}",
            durable=queue_type == "quorum",
            auto_delete=queue_type != "quorum",
            arguments={"x-queue-type": queue_type},
        )
        received: asyncio.Queue[float] = asyncio.Queue()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            received.put_nowait(time.perf_counter())

        tag = await queue.consume(on_message)
        trips = []
        for i in range(SAMPLES):
            began = time.perf_counter()
            message = aio_pika.Message(
                b'{"probe": %d}' % i, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            await channel.default_exchange.publish(message, routing_key=queue.name)
            trips.append(await asyncio.wait_for(received.get(), 10) - began)
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
    print(f"  RabbitMQ publish (confirmed) → consume, {queue_type:<7} queue  {p50_p99(trips)}")


async def main() -> None:
    load = os.getloadavg()[0]
    print(f"baselines: {SAMPLES} samples each, {os.cpu_count()} CPUs, load {load:.1f}")
    await postgres()
    await broker("classic")
    await broker("quorum")


if __name__ == "__main__":
    asyncio.run(main())
