"""The outbox relay against the real store (SQLite and Postgres) and the in-memory bus."""

from __future__ import annotations

import asyncio

import pytest

from libs.events.bus.memory.adapter import InMemoryBus
from libs.events.bus.topology import Topology
from libs.events.catalog import Event
from libs.events.relay import OutboxRelay
from libs.events.store.sql import SqlEventStore
from tests.integration.relay.helpers import WAIT_S, Seen, WrappedBus
from tests.support import events as make


def ids(events: list[Event]) -> list[str]:
    return [str(e.event_id) for e in events]


@pytest.fixture
async def bus() -> WrappedBus:
    inner = InMemoryBus(Topology())
    wrapped = WrappedBus(inner)
    await wrapped.start()
    yield wrapped
    await wrapped.close()


@pytest.fixture
async def seen(bus: WrappedBus) -> Seen:
    recorder = Seen()
    await bus.tap(["#"], recorder)
    return recorder


async def test_relays_api_and_projector_events_in_order_and_never_trainer_events(
    store: SqlEventStore, bus: WrappedBus, seen: Seen
) -> None:
    tid = make.training_id()
    request, step, cancel, failed = (
        make.requested("any", tid),
        make.progress(tid),
        make.cancel(tid),
        make.failed(tid),
    )
    await store.append([request, step, cancel, failed], fold=False)

    relay = OutboxRelay(store, bus)
    assert await relay.relay_pending() == 3
    await seen.wait_for(ids([request, cancel, failed]))
    assert seen.ids == ids([request, cancel, failed])
    assert await store.get_relay_cursor("outbox") == (await store.read_all())[-1].position


async def test_publishes_in_batches_in_position_order(
    store: SqlEventStore, bus: WrappedBus
) -> None:
    events = [make.cancel() for _ in range(5)]
    await store.append(events, fold=False)
    await OutboxRelay(store, bus, batch_size=2).relay_pending()
    assert [len(batch) for batch in bus.batches] == [2, 2, 1]
    assert [str(e.event_id) for batch in bus.batches for e in batch] == ids(events)


async def test_cursor_advances_only_after_the_confirm(
    store: SqlEventStore, bus: WrappedBus
) -> None:
    events = [make.cancel(), make.cancel()]
    await store.append(events, fold=False)
    relay = OutboxRelay(store, bus)
    bus.fail_next = 1
    with pytest.raises(Exception, match="broker said no"):
        await relay.relay_pending()
    assert await store.get_relay_cursor("outbox") == 0
    assert await relay.relay_pending() == 2
    assert await store.get_relay_cursor("outbox") == (await store.read_all())[-1].position


async def test_a_new_relay_resumes_from_the_stored_cursor(
    store: SqlEventStore, bus: WrappedBus
) -> None:
    first = [make.cancel() for _ in range(3)]
    await store.append(first, fold=False)
    await OutboxRelay(store, bus).relay_pending()
    later = [make.cancel() for _ in range(2)]
    await store.append(later, fold=False)

    bus.batches.clear()
    assert await OutboxRelay(store, bus).relay_pending() == 2
    assert [str(e.event_id) for batch in bus.batches for e in batch] == ids(later)


async def test_cursor_skips_past_trainer_events_it_will_never_relay(
    store: SqlEventStore, bus: WrappedBus
) -> None:
    tid = make.training_id()
    await store.append([make.cancel(tid)], fold=False)
    await store.append([make.progress(tid, batch=i) for i in range(30)], fold=False)
    relay = OutboxRelay(store, bus, skip_ahead_rows=10)
    await relay.relay_pending()
    last = await store.max_position()
    assert relay.cursor == last
    assert await store.get_relay_cursor("outbox") == last  # a big skip is persisted


async def test_run_is_woken_by_the_notifier_not_the_poll(
    store: SqlEventStore, bus: WrappedBus, seen: Seen
) -> None:
    relay = OutboxRelay(store, bus, notifier=store.notifier, poll_interval_s=3600)
    task = asyncio.create_task(relay.run())
    first = make.cancel()
    await store.append([first], fold=False)
    await seen.wait_for(ids([first]))
    second = make.cancel()  # the relay is idle now, waiting on the notifier, not the hour poll
    await store.append([second], fold=False)
    await seen.wait_for(ids([second]))
    relay.stop()
    await asyncio.wait_for(task, WAIT_S)


async def test_run_survives_publish_failures_and_stops_cleanly(
    store: SqlEventStore, bus: WrappedBus, seen: Seen
) -> None:
    bus.fail_next = 2
    relay = OutboxRelay(
        store, bus, notifier=store.notifier, poll_interval_s=3600, max_backoff_s=0.05
    )
    task = asyncio.create_task(relay.run())
    event = make.cancel()
    await store.append([event], fold=False)
    await seen.wait_for(ids([event]))
    assert bus.fail_next == 0
    relay.stop()
    await asyncio.wait_for(task, WAIT_S)
    assert task.exception() is None


async def test_with_a_notifier_a_pass_skips_to_the_notified_position_without_a_head_query(
    store: SqlEventStore, bus: WrappedBus
) -> None:
    class CountingStore(SqlEventStore):
        head_queries = 0

        async def max_position(self) -> int:
            CountingStore.head_queries += 1
            return await super().max_position()

    counting = CountingStore(store.engine, notifier=store.notifier, channel=store.channel)
    tid = make.training_id()
    cancel = make.cancel(tid)
    await counting.append([cancel], fold=False)
    await counting.append([make.progress(tid, batch=i) for i in range(30)], fold=False)
    relay = OutboxRelay(counting, bus, notifier=store.notifier, skip_ahead_rows=10)
    await relay.relay_pending()
    last = (await store.read_all())[-1].position
    assert relay.cursor == last == store.notifier.last_position
    assert await store.get_relay_cursor("outbox") == last
    assert CountingStore.head_queries == 0
    assert [ids(batch) for batch in bus.batches] == [ids([cancel])]  # trainer events stay put


async def test_commits_of_trainer_progress_do_not_wake_the_relay(
    store: SqlEventStore, bus: WrappedBus, seen: Seen
) -> None:
    class CountingStore(SqlEventStore):
        passes = 0

        async def read_all(self, *args, **kwargs):
            CountingStore.passes += 1
            return await super().read_all(*args, **kwargs)

    counting = CountingStore(store.engine, notifier=store.notifier, channel=store.channel)
    relay = OutboxRelay(counting, bus, notifier=store.notifier, poll_interval_s=3600)
    task = asyncio.create_task(relay.run())
    tid = make.training_id()
    first = make.cancel(tid)
    await store.append([first], fold=False)
    await seen.wait_for(ids([first]))
    passes = CountingStore.passes
    for batch in range(20):  # twenty commits of trainer progress, each notified
        await store.append([make.progress(tid, batch=batch)], fold=False)
    failed = make.failed(tid)  # a relayed type after them
    await store.append([failed], fold=False)
    await seen.wait_for(ids([failed]))
    assert CountingStore.passes == passes + 1
    relay.stop()
    await asyncio.wait_for(task, WAIT_S)
