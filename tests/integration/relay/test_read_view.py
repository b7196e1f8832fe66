"""autocommit_reads: the transaction-free read view the relay and SSE streams use."""

from __future__ import annotations

from libs.events.read_view import autocommit_reads
from libs.events.store import EventStore
from tests.contract import factories as make


async def test_the_view_reads_what_the_store_reads_in_autocommit_on_postgres_only(
    store: EventStore, backend: str
) -> None:
    tid = make.training_id()
    await store.append([make.requested(tid=tid), make.cancel(tid)])
    view = autocommit_reads(store)
    if backend == "sqlite":  # SQLite's BEGIN is the engine's own business: no view
        assert view is store
    else:
        assert view is not store and view.engine.pool is store.engine.pool  # no new connections
        assert view.engine.get_execution_options()["isolation_level"] == "AUTOCOMMIT"
    assert await view.read_stream(tid) == await store.read_stream(tid)
    assert await view.read_all(sources={"api"}) == await store.read_all(sources={"api"})
    assert await view.max_position() == await store.max_position()
    assert await view.get_training(tid) == await store.get_training(tid)


def test_anything_but_an_event_store_is_left_alone() -> None:
    class Fake:
        engine = None

    fake = Fake()
    assert autocommit_reads(fake) is fake
