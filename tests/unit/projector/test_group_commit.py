"""GroupCommitter with a fake commit: batching, ack-after-commit, outage retry, poison isolation.
No database: `commit` and `probe` are fakes the tests steer."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import exc as sa_exc

from services.projector.consumer import Backoff, GroupCommitter, PoisonEvent
from services.projector.outage import names_an_outage
from tests.support.events import TrainingScript


class FakeDatabase:
    def __init__(self) -> None:
        self.committed: list[list] = []  # one list per successful commit
        self.down = False
        self.poison: set[uuid.UUID] = set()
        self.failures = 0
        self.gate: asyncio.Event | None = None  # when set, commits wait for it

    async def commit(self, events) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            self.failures += 1
            raise RuntimeError("something odd")  # not obviously an outage: the probe decides
        bad = [e for e in events if e.event_id in self.poison]
        if bad:
            self.failures += 1
            raise ValueError(f"cannot fold {bad[0].event_id}")
        self.committed.append(list(events))

    async def probe(self) -> None:
        if self.down:
            raise ConnectionRefusedError("connection refused")


def events(n: int):
    script = TrainingScript(f"t-{uuid.uuid4().hex[:6]}")
    return [script.batch(1, i + 1, total_batches=n) for i in range(n)]


@pytest.fixture
async def db_and_committer():
    db = FakeDatabase()
    committer = GroupCommitter(
        db.commit, db.probe, max_batch=10, linger_s=0, backoff=Backoff(0.001, 0.002)
    )
    committer.start()
    yield db, committer
    await committer.stop()


async def test_events_arriving_during_a_commit_form_the_next_batch(db_and_committer):
    db, committer = db_and_committer
    db.gate = asyncio.Event()
    first, *rest = events(8)
    handlers = [asyncio.create_task(committer.submit(first))]
    await asyncio.sleep(0)  # the committer takes `first` alone and blocks on the gate
    handlers += [asyncio.create_task(committer.submit(e)) for e in rest]
    await asyncio.sleep(0)
    assert not any(h.done() for h in handlers), "a handler returned before its commit"
    db.gate.set()
    await asyncio.wait_for(asyncio.gather(*handlers), 5)
    assert [len(batch) for batch in db.committed] == [1, 7]
    assert [e.event_id for b in db.committed for e in b] == [e.event_id for e in [first, *rest]]


async def test_batches_never_exceed_max_batch(db_and_committer):
    db, committer = db_and_committer
    db.gate = asyncio.Event()
    batch = events(35)
    handlers = [asyncio.create_task(committer.submit(e)) for e in batch]
    await asyncio.sleep(0)
    db.gate.set()
    await asyncio.wait_for(asyncio.gather(*handlers), 5)
    sizes = [len(b) for b in db.committed]
    assert max(sizes) == 10 and sum(sizes) == 35
    assert committer.stats.events == 35 and committer.stats.largest_batch == 10


async def test_an_outage_is_retried_until_the_database_is_back_and_nothing_returns_early(
    db_and_committer,
):
    db, committer = db_and_committer
    db.down = True
    handlers = [asyncio.create_task(committer.submit(e)) for e in events(5)]

    await committer.wait_until(lambda stats: stats.retries >= 3, 5)
    assert not any(h.done() for h in handlers), "acked while the database was down"
    assert db.committed == []
    db.down = False
    await asyncio.wait_for(asyncio.gather(*handlers), 5)
    assert sum(len(b) for b in db.committed) == 5
    assert committer.stats.retries >= 3 and committer.stats.poison == 0


async def test_a_poison_event_fails_alone_and_the_rest_of_its_batch_commits(db_and_committer):
    db, committer = db_and_committer
    batch = events(4)
    db.poison.add(batch[2].event_id)
    db.gate = asyncio.Event()
    handlers = [asyncio.create_task(committer.submit(e)) for e in batch]
    await asyncio.sleep(0)
    db.gate.set()
    results = await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), 5)
    assert isinstance(results[2], PoisonEvent)
    assert [r for i, r in enumerate(results) if i != 2] == [None, None, None]
    committed = {e.event_id for b in db.committed for e in b}
    assert committed == {e.event_id for i, e in enumerate(batch) if i != 2}
    assert committer.stats.poison == 1


async def test_submit_many_commits_in_order():
    db = FakeDatabase()
    committer = GroupCommitter(db.commit, db.probe, max_batch=3, linger_s=0.001)
    committer.start()
    try:
        batch = events(7)
        await asyncio.wait_for(committer.submit_many(batch), 5)
    finally:
        await committer.stop()
    assert [e.event_id for b in db.committed for e in b] == [e.event_id for e in batch]


async def test_pending_counts_the_batch_in_flight_and_the_events_waiting(db_and_committer):
    db, committer = db_and_committer
    db.down = True
    first, *rest = events(13)
    handlers = [asyncio.create_task(committer.submit(first))]
    await committer.wait_until(lambda stats: stats.retries >= 1, timeout=5)  # `first` in flight
    handlers += [asyncio.create_task(committer.submit(e)) for e in rest]
    await asyncio.sleep(0)  # the handlers hand their events in
    assert committer.pending == 13
    db.down = False
    await asyncio.wait_for(asyncio.gather(*handlers), 5)
    assert committer.pending == 0 and committer.stats.events == 13


async def test_stop_cancels_waiting_handlers_so_their_messages_are_requeued():
    db = FakeDatabase()
    db.down = True
    committer = GroupCommitter(db.commit, db.probe, backoff=Backoff(0.001, 0.001))
    committer.start()
    handler = asyncio.create_task(committer.submit(events(1)[0]))
    await committer.wait_until(lambda stats: stats.retries >= 3, timeout=5)  # in the retry loop
    await committer.stop()
    with pytest.raises(asyncio.CancelledError):
        await handler
    assert db.committed == []


def test_connection_errors_are_outages_and_logic_errors_are_not():
    assert names_an_outage(sa_exc.OperationalError("SELECT 1", {}, Exception("locked")))
    assert names_an_outage(ConnectionRefusedError("refused"))
    try:
        try:
            raise OSError("network is unreachable")
        except OSError as inner:
            raise RuntimeError("append failed") from inner
    except RuntimeError as chained:
        assert names_an_outage(chained)
    assert not names_an_outage(ValueError("Started has no training_id"))
    assert not names_an_outage(sa_exc.IntegrityError("INSERT", {}, Exception("dup")))
    # SQLAlchemy wraps the driver's error: the original is looked at too.
    assert names_an_outage(sa_exc.DBAPIError("INSERT", {}, ConnectionResetError("reset")))
    assert not names_an_outage(sa_exc.DBAPIError("INSERT", {}, KeyError("payload")))
