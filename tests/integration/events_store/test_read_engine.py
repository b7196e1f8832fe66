"""The SQL store's reads: on Postgres an AUTOCOMMIT view of the store's own engine (same pool,
no BEGIN / ROLLBACK around a lone SELECT), on SQLite the engine itself; same results."""

from __future__ import annotations

from libs.events.store.sql import SqlEventStore
from tests.support import events as make


async def test_reads_run_in_autocommit_on_postgres_only_and_read_what_was_written(
    store: SqlEventStore, backend: str
) -> None:
    tid = make.training_id()
    written = await store.append([make.requested(tid=tid), make.cancel(tid)])
    reads = store.read_engine
    if backend == "sqlite":  # SQLite's BEGIN is the engine's own business: no view
        assert reads is store.engine
    else:
        assert reads is not store.engine and reads.pool is store.engine.pool  # no new connections
        assert reads.get_execution_options()["isolation_level"] == "AUTOCOMMIT"
    assert [s.event for s in await store.read_stream(tid)] == [s.event for s in written.appended]
    assert [s.position for s in await store.read_all(sources={"api"})] == list(written.positions)
    assert await store.max_position() == written.last_position
    assert await store.get_training(tid) == written.states[tid]
