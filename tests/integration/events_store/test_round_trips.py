"""An append on Postgres costs at most three round trips (the pool's pre-ping, one read, one
write: libs/events/store/pg_append.py), counted on the wire by a proxy; one that loses the race
for the log's head falls back to the locked transaction and still stores every event once."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from libs.events.store.sql import SqlEventStore
from tests.conftest import POSTGRES_HOST, POSTGRES_PORT
from tests.support.events import TrainingScript
from tests.support.postgres import drop_schema, in_schema, postgres_schema_engine
from tests.support.round_trips import RoundTripCounter

pytestmark = pytest.mark.integration


@pytest.fixture
async def counted(postgres_available):
    schema = f"rt_{uuid.uuid4().hex[:12]}"
    direct = await postgres_schema_engine(schema)
    await upgrade_engine(direct)
    await direct.dispose()
    proxy = RoundTripCounter(POSTGRES_HOST, POSTGRES_PORT)
    await proxy.start()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/test"
    engine = make_engine(url, connect_args=in_schema(schema))
    try:
        yield SqlEventStore(engine), proxy
    finally:
        await engine.dispose()
        await proxy.close()
        await drop_schema(schema)


async def test_one_append_takes_at_most_three_round_trips(counted) -> None:
    store, proxy = counted
    script = TrainingScript("t-1")
    await store.append([script.requested(), script.started()])  # connect, prepare: warm-up
    for batch in (1, 2):
        await store.append([script.batch(1, batch)])
    costs = []
    for batch in range(3, 13):
        before = proxy.round_trips
        await store.append([script.batch(1, batch)])
        costs.append(proxy.round_trips - before)
    before = proxy.round_trips
    await store.append([script.epoch_completed(1, 0.5)])  # two read models at once
    costs.append(proxy.round_trips - before)
    assert max(costs) <= 3, costs
    state = await store.get_training("t-1")
    assert state is not None and state.batch == 12 and state.epoch == 1


async def test_appends_racing_for_the_head_store_every_event_once(counted) -> None:
    store, _ = counted
    scripts = [TrainingScript(f"t-{i}") for i in range(8)]
    await store.append([s.requested() for s in scripts])
    runs = [[s.started(), *(s.batch(1, b) for b in range(1, 11))] for s in scripts]

    async def play(events) -> None:
        for event in events:
            await store.append([event])

    await asyncio.gather(*(play(run) for run in runs))
    stored = await store.read_all(0, 10_000)
    positions = [s.position for s in stored]
    assert positions == sorted(set(positions))
    assert len(stored) == 8 + 8 * 11
    for s in scripts:
        state = await store.get_training(s.training_id)
        assert state is not None and state.batch == 10
