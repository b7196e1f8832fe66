"""Postgres-only guarantees: commit-ordered positions under concurrency, LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from libs.events.notify.inprocess import InProcessNotifier
from libs.events.notify.port import RESYNC
from libs.events.notify.postgres import PostgresNotifier
from libs.events.store.sql import SqlEventStore
from tests.support.events import TrainingScript
from tests.support.postgres import PG_URL

pytestmark = pytest.mark.integration

WRITERS, EVENTS_PER_WRITER, BATCH = 8, 1000, 10


def writer_events(i: int) -> list:
    s = TrainingScript(f"w-{i}")
    events = [s.requested(), s.started()]
    n = 2
    while n < EVENTS_PER_WRITER:
        events.append(s.batch(1 + n // 100, n % 100, total_batches=100))
        n += 1
    return events


async def test_concurrent_appenders_and_a_tailing_reader_see_commit_order(pg_engine):
    notifier = InProcessNotifier()
    store = SqlEventStore(pg_engine, notifier=notifier)
    streams = [writer_events(i) for i in range(WRITERS)]
    writers_done = asyncio.Event()
    seen: list[int] = []

    async def tail() -> None:
        after = 0
        while True:
            finished = writers_done.is_set()  # read before the page: the last page is complete
            page = await store.read_all(after=after, limit=700)
            seen.extend(x.position for x in page)
            if page:
                after = page[-1].position
            elif finished:
                return
            else:
                await notifier.wait_for_change(after, timeout=0.5)

    async def write(events: list) -> list[int]:
        positions: list[int] = []
        for start in range(0, len(events), BATCH):
            positions += (await store.append(events[start : start + BATCH])).positions
        return positions

    reader = asyncio.create_task(tail())
    per_writer = await asyncio.gather(*(write(events) for events in streams))
    writers_done.set()
    await asyncio.wait_for(reader, 60)

    everything = [x.position for x in await store.read_all(limit=WRITERS * EVENTS_PER_WRITER + 1)]
    assert len(everything) == WRITERS * EVENTS_PER_WRITER
    assert seen == everything  # the tailing reader skipped nothing and saw nothing twice
    assert all(a < b for a, b in zip(seen, seen[1:], strict=False))
    for positions in per_writer:
        assert positions == sorted(positions) and len(positions) == EVENTS_PER_WRITER

    top = await store.max_position()
    replays = await asyncio.gather(*(store.append(events) for events in streams))
    assert all(r.appended == () and len(r.duplicates) == EVENTS_PER_WRITER for r in replays)
    assert await store.max_position() == top
    state = await store.get_training("w-3")
    assert state.last_position == max(per_writer[3])


async def test_listen_notify_delivers_committed_positions(pg_engine):
    channel = f"ktrdr_test_{uuid.uuid4().hex[:8]}"
    store = SqlEventStore(pg_engine, channel=channel)  # no in-process hook: only LISTEN can tell
    async with PostgresNotifier(PG_URL, channel=channel) as listener:
        sub = listener.subscribe()
        s = TrainingScript("t-1")
        results = await asyncio.gather(*(store.append([e]) for e in [s.requested(), s.started()]))
        positions = sorted(p for r in results for p in r.positions)
        got = []
        while len(got) < 2:
            note = await sub.get(timeout=5)
            assert note is not None, "notification not delivered"
            # Delivered at commit, so the notified position is already readable.
            visible = await store.read_all(after=note.position - 1, limit=1)
            assert [x.position for x in visible] == [note.position]
            got.append(note)
        assert sorted(n.position for n in got) == positions
        assert {n.training_id for n in got} == {"t-1"}
        assert await listener.wait_for_change(positions[0], timeout=1)


async def test_listener_reconnects_after_its_connection_is_killed(pg_engine):
    channel = f"ktrdr_test_{uuid.uuid4().hex[:8]}"
    store = SqlEventStore(pg_engine, channel=channel)
    async with PostgresNotifier(PG_URL, channel=channel, health_interval=0.2) as listener:
        sub = listener.subscribe()
        async with pg_engine.connect() as conn:
            killed = await conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE query LIKE :q AND pid <> pg_backend_pid()"
                ),
                {"q": f'LISTEN "{channel}"%'},
            )
        assert killed == 1
        assert await sub.get(timeout=10) == RESYNC  # told to re-read: it may have missed some
        result = await store.append([TrainingScript("t-1").requested()])
        note = await sub.get(timeout=5)
        assert note is not None and note.position == result.last_position
        assert listener.reconnects == 1
