"""Rebuild: refolding the log reproduces the live read models; drift is found and repaired."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from libs.events import tables as t
from libs.events.readmodels import models as models_rm
from libs.events.readmodels.models import models
from libs.events.readmodels.registry import READ_MODELS, REBUILT
from libs.events.readmodels.training_epochs import training_epochs
from libs.events.readmodels.trainings import FAILED, trainings
from libs.events.store.rebuild import rebuild
from tests.support.events import TrainingScript


def varied_log() -> list:
    """Outcomes, a crash + redelivery, a zombie attempt, cancels, duplicates, NaN losses."""
    events = []
    for i, outcome in enumerate(["completed", "failed", "cancelled", "none"]):
        s = TrainingScript(f"t-{i}", tenant=("acme", "other")[i % 2])
        events += [s.requested(), *s.run(epochs=2, batches=3, outcome=outcome, version=i + 1)]
        # the model registry: champion on t-0's v1; on a training with no model: not accepted
        events += [s.alias_set("champion", i + 1)]
    s = TrainingScript("t-crash")
    events += [s.requested(), *s.run(epochs=2, batches=2, outcome="none")]
    events += s.run(epochs=3, batches=2, attempt=2, trainer="t2", version=7)
    events += [s.batch(1, 1, attempt=1)]  # zombie from the crashed attempt
    events += [s.alias_set("best", 7), s.alias_removed("best", 7), s.model_deleted(7, "toy")]
    q = TrainingScript("t-queued-cancel")
    events += [q.requested(), q.cancel_requested(), q.cancelled(attempt=1)]
    n = TrainingScript("t-nan")
    diverged = n.epoch_completed(1, float("nan")).model_copy(update={"train_loss": float("inf")})
    events += [
        n.requested(),
        n.started(),
        n.batch(1, 1).model_copy(update={"running_loss": float("nan")}),
        diverged,
    ]
    events += [n.heartbeat("t1", running=["t-nan"])]
    return events


async def test_rebuild_of_a_varied_log_equals_the_live_tables(store, engine):
    events = varied_log()
    for start in range(0, len(events), 7):  # several appends, like a projector's batches
        await store.append(events[start : start + 7])
    await store.append(events[:10])  # redelivered duplicates change nothing
    report = await rebuild(store, batch_size=16)  # several batches
    assert report.equal, [str(d) for d in report.differences]
    stream_events = [e for e in events if e.training_id is not None]
    assert report.events == len(stream_events) and report.position == await store.max_position()
    assert report.rows["trainings"] == 7 and report.rows["models"] == 2  # t-0 v1, t-crash v7
    assert report.rows["model_aliases"] == 2  # t-0's champion; t-crash's best, removed
    rows = await store.find(models_rm.READ_MODEL)
    (deleted,) = [m for m in rows if m.deleted_at is not None]
    assert (deleted.training_id, deleted.version, deleted.deleted_by) == ("t-crash", 7, "admin")
    assert [m.version for m in await store.list_models()] == [1]  # lists skip deleted ones
    # 4 runs x 2 epochs, t-crash 2 (attempt 1) + 3 (attempt 2), t-nan 1; the zombie adds none
    assert report.rows["training_epochs"] == 4 * 2 + 2 + 3 + 1
    crash = await store.list_epochs("t-crash")
    assert [(e.attempt, e.epoch) for e in crash] == [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3)]
    nan_epoch = (await store.list_epochs("t-nan"))[0]
    assert nan_epoch.val_loss is None and nan_epoch.train_loss is None
    assert (await store.get_training("t-nan")).best_metrics is None


async def test_rebuild_finds_drift_and_swap_repairs_it(store, engine):
    events = varied_log()
    await store.append(events)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(trainings).where(trainings.c.training_id == "t-0").values(status=FAILED)
        )
        await conn.execute(sa.delete(training_epochs).where(training_epochs.c.training_id == "t-1"))
        await conn.execute(sa.delete(models))
    report = await rebuild(store)
    assert not report.equal
    found = {(d.table, d.key[0], d.column) for d in report.differences}
    assert ("trainings", "t-0", "status") in found
    assert ("training_epochs", "t-1", None) in found
    missing_models = {d.key for d in report.differences if d.table == "models"}
    assert {key[1:3] for key in missing_models} == {("neuro_mean_reversion", "1d")}
    assert {key[0] for key in missing_models} == {"default", "acme"}  # keys lead with the tenant
    assert report.differences_total == len(report.differences) == 1 + 2 + 2
    status = next(d for d in report.differences if d.column == "status")
    assert (status.live, status.rebuilt) == (FAILED, "completed")
    assert "t-0" in str(status)

    repaired = await rebuild(store, swap=True)
    assert repaired.swapped and not repaired.equal  # it reports what it replaced
    after = await rebuild(store)
    assert after.equal, [str(d) for d in after.differences]
    assert (await store.get_training("t-0")).status == "completed"
    assert len(await store.find(models_rm.READ_MODEL)) == 2  # the deleted one included


async def test_compare_covers_every_registered_read_model_and_only_ephemeral_ones_are_left_out(
    store, engine
):
    """A row lost from any rebuilt read model's table is reported under that table's name."""
    assert {m.name for m in READ_MODELS} - {m.name for m in REBUILT} == {"trainers"}
    await store.append(varied_log())
    assert (await rebuild(store)).equal
    for model in REBUILT:
        async with engine.begin() as conn:
            first = (await conn.execute(sa.select(model.table).limit(1))).first()
            assert first is not None, f"varied_log() leaves {model.name} empty"
            key = [c == first._mapping[c.name] for c in model.table.primary_key.columns]
            await conn.execute(sa.delete(model.table).where(*key))
        report = await rebuild(store)
        assert model.name in {d.table for d in report.differences}, model.name
        await rebuild(store, swap=True)
        assert (await rebuild(store)).equal


async def test_rebuild_of_an_empty_log(store):
    report = await rebuild(store)
    assert report.equal and report.events == 0 and report.position == 0


async def test_rebuild_reads_old_schema_versions_and_empty_payloads(store, engine):
    """Rows written by older code: a v1 BatchProgress (upcast on read) and a Cancelled whose
    payload is `{}` (all defaults). The refold must decode them exactly as the live fold did."""
    s = TrainingScript("t-old")
    await store.append([s.requested(), s.started()])
    v1 = {"epoch": 1, "total_epochs": 2, "batch": 3, "total_batches": 4, "loss": 0.5}
    v1 |= {"accuracy": 0.6, "samples_per_s": 10.0, "percent": 25.0}
    raw_rows = [("BatchProgress", 1, v1), ("Cancelled", 1, {})]
    async with engine.begin() as conn:
        for seq, (event_type, version, payload) in enumerate(raw_rows, start=1):
            await conn.execute(
                sa.insert(t.events).values(
                    event_id=uuid.uuid4(),
                    training_id="t-old",
                    type=event_type,
                    schema_version=version,
                    tenant="default",
                    source="trainer:t1",
                    attempt=1,
                    seq=seq,
                    correlation_id=None,
                    occurred_at=s.clock,
                    recorded_at=s.clock,
                    payload=payload,
                )
            )
    # Fold the raw rows into the live tables the way the store would have: refold the stream.
    rebuilt = await rebuild(store)
    assert not rebuilt.equal  # the raw inserts bypassed the live fold...
    await rebuild(store, swap=True)
    state = await store.get_training("t-old")
    assert state.status == "cancelled" and state.progress == 0.25  # ...the swap applied them
    assert state == await store.state_as_of("t-old", rebuilt.position)
    assert (await rebuild(store)).equal
