"""The event store's contract (libs/events/store/port.py), run on every adapter: in memory, SQL on
SQLite, SQL on the real Postgres (the `store` fixture in conftest.py)."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

import pytest

from libs.events.readmodels import models, trainers, training_epochs, trainings
from libs.events.readmodels.projection import Projection
from libs.events.readmodels.trainings import CANCELLING, COMPLETED, QUEUED, RUNNING, fold_stream
from libs.events.store.idempotency import IdempotencyClaim, IdempotencyConflict
from tests.support.events import TrainingScript


async def test_append_assigns_increasing_positions_and_reads_back_equal_events(store):
    s = TrainingScript("t-1")
    events = [s.requested(), *s.run(epochs=2, batches=3)]
    result = await store.append(events)
    assert len(result.positions) == len(events)
    assert list(result.positions) == sorted(set(result.positions))
    stored = await store.read_stream("t-1")
    assert [x.event for x in stored] == events  # field-for-field round trip, upcast included
    assert [x.position for x in stored] == list(result.positions)
    assert await store.max_position() == result.last_position
    assert all(x.recorded_at.tzinfo is not None for x in stored)


async def test_read_stream_and_read_all_page_by_position(store):
    a, b = TrainingScript("t-a"), TrainingScript("t-b")
    await store.append([a.requested(), b.requested(), a.started(), b.started(), a.phase("x", 0)])
    stream_a = await store.read_stream("t-a")
    assert [x.event.training_id for x in stream_a] == ["t-a"] * 3
    tail = await store.read_stream("t-a", after=stream_a[0].position, limit=1)
    assert [x.position for x in tail] == [stream_a[1].position]
    everything = await store.read_all()
    assert len(everything) == 5
    page = await store.read_all(after=everything[1].position, limit=2)
    assert [x.position for x in page] == [x.position for x in everything[2:4]]


async def test_read_all_filters_by_source_exactly_or_by_prefix(store):
    s = TrainingScript("t-1")
    await store.append([s.requested(), s.started(), s.cancel_requested(), s.cancelled()])
    api = await store.read_all(sources={"api", "projector"})
    assert [x.event.type for x in api] == ["TrainingRequested", "CancelRequested"]
    trainer = await store.read_all(sources=["trainer:*"])
    assert [x.event.type for x in trainer] == ["Started", "Cancelled"]
    assert await store.read_all(sources=[]) == []
    with pytest.raises(TypeError):
        await store.read_all(sources="api")


async def test_duplicates_are_skipped_and_not_folded_again(store):
    s = TrainingScript("t-1")
    events = [s.requested(), s.started(), s.batch(1, 1)]
    first = await store.append(events)
    before = await store.get_training("t-1")
    again = await store.append([events[2], events[2], s.batch(1, 2)])
    assert again.duplicates == {events[2].event_id}
    assert len(again.appended) == 1 and again.appended[0].event.batch == 2
    assert len(await store.read_all()) == len(events) + 1
    replay = await store.append(events)
    assert replay.appended == () and replay.duplicates == {e.event_id for e in events}
    after = await store.get_training("t-1")
    assert after.last_position == again.last_position > first.last_position
    assert before.status == after.status == RUNNING
    fresh = s.batch(1, 3)
    twice = await store.append([fresh, fresh])  # repeated within one call, new to the store
    assert len(twice.appended) == 1 and twice.duplicates == {fresh.event_id}


async def test_naive_timestamps_are_refused(store):
    naive = (
        TrainingScript("t-1").requested().model_copy(update={"occurred_at": datetime(2026, 1, 1)})
    )
    with pytest.raises(Exception, match="naive datetime"):
        await store.append([naive])
    assert await store.max_position() == 0


async def test_read_models_are_folded_in_the_append(store):
    s = TrainingScript("t-1", tenant="acme")
    queued = await store.append([s.requested()])
    assert queued.states["t-1"].status == QUEUED  # read-your-writes
    run = s.run(epochs=3, batches=2, version=4)
    await store.append(run[:5])
    assert (await store.get_training("t-1")).status == RUNNING
    await store.append(run[5:])
    state = await store.get_training("t-1")
    assert state.status == COMPLETED and state.model["version"] == 4
    assert state == fold_stream([(x.position, x.event) for x in await store.read_stream("t-1")])
    epochs = await store.list_epochs("t-1")
    assert [(e.attempt, e.epoch) for e in epochs] == [(1, 1), (1, 2), (1, 3)]
    models = await store.list_models(strategy=s.strategy)
    assert [(m.version, m.training_id, m.tenant) for m in models] == [(4, "t-1", "acme")]
    assert await store.list_models(tenant="someone-else") == []


async def test_each_tenant_has_its_own_model_versions(store):
    acme, other = TrainingScript("t-a", tenant="acme"), TrainingScript("t-b", tenant="other")
    for s in (acme, other):  # both tenants' first model of one strategy and timeframe
        await store.append(s.run(epochs=1, batches=1, version=1))
    models = await store.list_models(strategy=acme.strategy, timeframe=acme.timeframe)
    assert sorted((m.tenant, m.version, m.training_id) for m in models) == [
        ("acme", 1, "t-a"),
        ("other", 1, "t-b"),
    ]
    assert [m.training_id for m in await store.list_models(tenant="other")] == ["t-b"]


async def test_heartbeats_update_trainers_but_are_not_stored(store):
    s = TrainingScript("t-1")
    older = s.heartbeat("t9", running=["t-1"])
    newer = s.heartbeat("t9", running=[])
    await store.append([s.heartbeat("t8")])
    await store.append([newer])
    await store.append([older])  # delivered late: must not roll last_seen back
    trainers = await store.list_trainers()
    assert [(x.trainer_id, x.running) for x in trainers] == [("t8", []), ("t9", [])]
    assert trainers[1].last_seen == newer.occurred_at
    assert await store.max_position() == 0


async def test_events_without_a_stream_are_refused(store):
    s = TrainingScript("t-1")
    orphan = s.started().model_copy(update={"training_id": None})
    with pytest.raises(ValueError, match="training_id"):
        await store.append([orphan])


async def test_a_failing_fold_rolls_back_the_events(store, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("read model fold failed")

    monkeypatch.setattr(Projection, "apply", broken)
    s = TrainingScript("t-1")
    with pytest.raises(RuntimeError):
        await store.append([s.requested()])
    assert await store.max_position() == 0
    assert await store.get_training("t-1") is None


async def test_state_as_of_refolds_a_prefix(store):
    s = TrainingScript("t-1")
    result = await store.append([s.requested(), s.started(), s.cancel_requested(), s.cancelled()])
    p = result.positions
    assert (await store.state_as_of("t-1", p[0])).status == QUEUED
    assert (await store.state_as_of("t-1", p[1])).status == RUNNING
    assert (await store.state_as_of("t-1", p[2])).status == CANCELLING
    assert await store.state_as_of("t-1", p[3]) == await store.get_training("t-1")
    assert await store.state_as_of("t-1", 0) is None
    assert await store.state_as_of("nope", p[3]) is None


async def test_list_trainings_filters_and_pages_newest_first(store):
    for i in range(5):
        s = TrainingScript(f"t-{i}", tenant="acme" if i % 2 == 0 else "other")
        await store.append([s.requested()] + ([s.started()] if i >= 3 else []))
    page1, cursor = await store.list_trainings(limit=2)
    assert [x.training_id for x in page1] == ["t-4", "t-3"]
    page2, cursor2 = await store.list_trainings(limit=2, after_cursor=cursor)
    page3, cursor3 = await store.list_trainings(limit=2, after_cursor=cursor2)
    assert [x.training_id for x in page2 + page3] == ["t-2", "t-1", "t-0"]
    assert cursor3 is None
    acme, _ = await store.list_trainings(tenant="acme")
    assert [x.training_id for x in acme] == ["t-4", "t-2", "t-0"]
    running, _ = await store.list_trainings(status=[RUNNING])
    assert [x.training_id for x in running] == ["t-4", "t-3"]
    with pytest.raises(ValueError, match="not one of"):
        await store.list_trainings(status="finished")
    with pytest.raises(ValueError, match="after_cursor"):
        await store.list_trainings(after_cursor="abc")
    # Positions are signed 64 bits: a cursor beyond is refused like a malformed one, not
    # handed to SQL (where it would overflow the driver).
    for outside in ("-1", str(2**63), "9" * 40):
        with pytest.raises(ValueError, match="not a cursor returned by a previous page"):
            await store.list_trainings(after_cursor=outside)
    everything, _ = await store.list_trainings(after_cursor=str(2**63 - 1), limit=10)
    assert len(everything) == 5


async def test_relay_cursor_defaults_to_zero_and_persists(store):
    assert await store.get_relay_cursor("relay") == 0
    await store.set_relay_cursor("relay", 42)
    await store.set_relay_cursor("relay", 43)
    await store.set_relay_cursor("other", 7)
    assert (await store.get_relay_cursor("relay"), await store.get_relay_cursor("other")) == (43, 7)


async def test_idempotency_key_returns_the_same_training(store):
    s = TrainingScript("t-1", tenant="acme")
    first = await store.append([s.requested(idempotency_key="k")], idempotency=("acme", "k", "h1"))
    assert first.replayed_training_id is None and len(first.appended) == 1
    assert await store.idempotent_training_id("acme", "k") == "t-1"
    assert await store.idempotent_training_id("other", "k") is None
    retry = TrainingScript("t-2", tenant="acme").requested(idempotency_key="k")
    again = await store.append([retry], idempotency=("acme", "k", "h1"))
    assert again.replayed_training_id == "t-1" and again.appended == ()
    assert again.states["t-1"].status == QUEUED
    assert await store.get_training("t-2") is None
    with pytest.raises(IdempotencyConflict, match="different request"):
        await store.append([retry], idempotency=("acme", "k", "h2"))
    assert await store.max_position() == first.last_position


async def test_idempotency_record_returns_the_claimed_training_and_request_hash(store):
    assert await store.idempotency_record("acme", "k") is None
    s = TrainingScript("t-1", tenant="acme")
    await store.append([s.requested(idempotency_key="k")], idempotency=("acme", "k", "h1"))
    record = await store.idempotency_record("acme", "k")
    assert (record.training_id, record.request_hash) == ("t-1", "h1")
    assert await store.idempotency_record("other", "k") is None
    assert await store.idempotency_record("acme", "k2") is None
    # A retry is checked against the record without appending anything.
    assert record.replay_for(IdempotencyClaim("acme", "k", "h1")) == "t-1"
    with pytest.raises(IdempotencyConflict, match="different request"):
        record.replay_for(IdempotencyClaim("acme", "k", "h2"))
    # A replayed append leaves the record as the first request made it.
    retry = TrainingScript("t-2", tenant="acme").requested(idempotency_key="k")
    await store.append([retry], idempotency=("acme", "k", "h1"))
    assert await store.idempotency_record("acme", "k") == record


async def test_concurrent_requests_with_one_key_make_one_training(store):
    async def submit(i: int):
        req = TrainingScript(f"t-{i}").requested(idempotency_key="same")
        return await store.append([req], idempotency=("default", "same", "h"))

    results = await asyncio.gather(*(submit(i) for i in range(6)))
    created = [r for r in results if r.replayed_training_id is None]
    assert len(created) == 1
    winner = created[0].appended[0].event.training_id
    assert all(r.replayed_training_id in (None, winner) for r in results)
    assert len(await store.read_all()) == 1


async def test_notifier_is_signalled_after_commit(store, notifier):
    sub = notifier.subscribe()
    s = TrainingScript("t-1")
    result = await store.append([s.requested(), s.started(), TrainingScript("t-2").requested()])
    got = [await sub.get(timeout=5), await sub.get(timeout=5)]
    by_training = {n.training_id: n for n in got}
    assert by_training["t-1"].position == result.positions[1]
    assert by_training["t-1"].type == "Started"
    assert by_training["t-2"].position == result.positions[2]
    assert await notifier.wait_for_change(result.positions[1], timeout=1)
    assert not await notifier.wait_for_change(result.last_position, timeout=0.05)
    sub.close()


async def test_non_finite_losses_are_stored_in_the_log_and_nulled_in_read_models(store):
    s = TrainingScript("t-1")
    diverged = s.batch(1, 1).model_copy(
        update={"running_loss": float("nan"), "eta_s": float("inf")}
    )
    epoch = s.epoch_completed(1, float("nan"))
    await store.append([s.requested(), s.started(), diverged, epoch])
    stored = [x.event for x in await store.read_stream("t-1")]
    assert math.isnan(stored[2].running_loss) and math.isinf(stored[2].eta_s)
    assert math.isnan(stored[3].val_loss)
    state = await store.get_training("t-1")
    assert state.latest_metrics["running_loss"] is None and state.eta_s is None
    assert state.best_metrics is None  # a NaN val_loss is never "best"
    assert (await store.list_epochs("t-1"))[0].val_loss is None


async def test_concurrent_appends_to_one_training_lose_no_fold(store):
    """Appends are serialised before the read model is read, so no fold overwrites another."""
    s = TrainingScript("t-1")
    await store.append([s.requested(), s.started()])
    epochs = [s.epoch_completed(epoch, val_loss=1.0 / epoch) for epoch in range(1, 25)]
    results = await asyncio.gather(*(store.append([e]) for e in epochs))
    top = max(r.last_position for r in results)
    state = await store.get_training("t-1")
    assert state.last_position == top
    assert state.best_metrics["epoch"] == 24 and state.latest_metrics["epoch"] == 24
    assert [e.epoch for e in await store.list_epochs("t-1")] == list(range(1, 25))
    assert state == await store.state_as_of("t-1", top)


async def test_find_reads_any_registered_read_model(store):
    s = TrainingScript("t-1")
    await store.append([s.requested(), *s.run(epochs=3, batches=1, version=2)])
    await store.append([TrainingScript("t-2").requested(), s.heartbeat("t7")])
    epochs = await store.find(
        training_epochs.READ_MODEL, where={"training_id": "t-1"}, order_by=["-epoch"], limit=2
    )
    assert [e.epoch for e in epochs] == [3, 2]
    assert epochs == (await store.list_epochs("t-1"))[::-1][:2]
    everything = await store.find(trainings.READ_MODEL, order_by=["training_id"])
    assert [t.training_id for t in everything] == ["t-1", "t-2"]
    assert everything[0] == await store.get_training("t-1")
    assert [m.version for m in await store.find(models.READ_MODEL)] == [2]
    assert [t.trainer_id for t in await store.find(trainers.READ_MODEL)] == ["t7"]
    assert await store.find(trainings.READ_MODEL, where={"tenant": "nobody"}) == []
    with pytest.raises(KeyError):
        await store.find(trainings.READ_MODEL, where={"no_such_column": 1})


# --- API keys ----------------------------------------------------------------------------------


def _key(key_id: str, tenant: str = "default", **kw):
    from datetime import UTC, timedelta

    from libs.events.store.apikeys import ApiKeyRecord

    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=int(key_id, 16) % 1000)
    return ApiKeyRecord(
        key_id=key_id,
        tenant=tenant,
        role=kw.pop("role", "reader"),
        name=kw.pop("name", f"key {key_id}"),
        secret_hash="scrypt$x",
        created_at=created,
        **kw,
    )


async def test_api_keys_are_stored_found_listed_and_never_duplicated(store):
    from libs.events.store.apikeys import DuplicateApiKey

    a, b, c = _key("000000000000000a"), _key("000000000000000b", "acme"), _key("000000000000000c")
    for record in (c, a, b):
        await store.add_api_key(record)
    assert await store.api_key(a.key_id) == a  # every field round-trips, timestamps aware
    assert await store.api_key("ffffffffffffffff") is None
    assert [k.key_id for k in await store.api_keys()] == [a.key_id, b.key_id, c.key_id]
    assert [k.key_id for k in await store.api_keys(tenant="acme")] == [b.key_id]
    with pytest.raises(DuplicateApiKey):
        await store.add_api_key(_key(a.key_id, "other"))
    assert (await store.api_key(a.key_id)).tenant == "default"


async def test_revoking_a_key_is_seen_at_once_and_keeps_the_first_time(store):
    from datetime import UTC, timedelta

    record = _key("00000000000000aa")
    await store.add_api_key(record)
    first = datetime(2026, 2, 1, tzinfo=UTC)
    revoked = await store.revoke_api_key(record.key_id, first)
    assert revoked.revoked_at == first and not revoked.usable_at(first)
    again = await store.revoke_api_key(record.key_id, first + timedelta(days=1))
    assert again.revoked_at == first
    assert (await store.api_key(record.key_id)).revoked_at == first
    assert await store.revoke_api_key("ffffffffffffffff", first) is None


async def test_touching_a_key_records_its_last_use(store):
    from datetime import UTC

    record = _key("00000000000000bb")
    await store.add_api_key(record)
    used = datetime(2026, 3, 1, 12, tzinfo=UTC)
    await store.touch_api_key(record.key_id, used)
    assert (await store.api_key(record.key_id)).last_used_at == used
    assert (await store.api_key(record.key_id)).revoked_at is None
