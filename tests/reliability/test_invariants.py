"""The suite's checker itself: it must catch what it exists to catch. A test double of the
projector that drops one event on the way to the log, an SSE stream with a gap, a cancel that
ended failed and a second Completed are each reported (SQLite: no servers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.events.catalog import Event
from libs.events.store.sql import SqlEventStore
from tests.reliability.invariants import Expectations, violations
from tests.support.events import TrainingScript
from tests.support.postgres import migrated_sqlite

pytestmark = pytest.mark.reliability


class LossyProjector:
    """Stores what it is handed, one event at a time, but silently drops the `drop`-th."""

    def __init__(self, store: SqlEventStore, drop: int | None) -> None:
        self.store, self.drop, self.handled = store, drop, 0

    async def handle(self, event: Event) -> None:
        self.handled += 1
        if self.handled != self.drop:
            await self.store.append([event])


def _run(training_id: str) -> list[Event]:
    script = TrainingScript(training_id)
    events: list[Event] = [script.requested(), script.started(), script.phase("training", 8)]
    events += [script.batch(1, b, total_epochs=1, total_batches=3) for b in (1, 2, 3)]
    return [*events, script.epoch_completed(1, 0.4, total_epochs=1), script.completed()]


async def _project(tmp_path: Path, drop: int | None, expect: Expectations) -> list[str]:
    confirmed = _run("t-1")
    expect.trainings.add("t-1")
    async with migrated_sqlite(tmp_path / "log.db") as engine:
        store = SqlEventStore(engine)
        projector = LossyProjector(store, drop)
        for event in confirmed:
            await projector.handle(event)
        return await violations(store, confirmed, expect)


async def test_a_faithful_projector_passes(tmp_path: Path) -> None:
    expect = Expectations()
    expect.streams["t-1"] = list(range(1, 9))
    assert await _project(tmp_path, drop=None, expect=expect) == []


async def test_one_dropped_event_is_caught(tmp_path: Path) -> None:
    found = await _project(tmp_path, drop=4, expect=Expectations())  # a BatchProgress
    assert len(found) == 1 and found[0].startswith("lost: BatchProgress"), found


async def test_a_gap_in_an_sse_stream_is_caught(tmp_path: Path) -> None:
    expect = Expectations()
    expect.streams["t-1"] = [1, 2, 3, 5, 6, 7, 8]
    found = await _project(tmp_path, drop=None, expect=expect)
    assert found and "missing [4]" in found[0], found


async def test_a_cancel_that_did_not_end_cancelled_is_caught(tmp_path: Path) -> None:
    expect = Expectations()
    expect.cancelled.add("t-1")
    found = await _project(tmp_path, drop=None, expect=expect)
    assert found == ["t-1: cancel accepted but it ended completed"], found


async def test_a_second_completed_is_caught(tmp_path: Path) -> None:
    confirmed = _run("t-1")
    again = TrainingScript("t-1").completed(attempt=2, trainer="t2")
    async with migrated_sqlite(tmp_path / "log.db") as engine:
        store = SqlEventStore(engine)
        await store.append(confirmed)
        await store.append([again])
        found = await violations(store, [*confirmed, again], Expectations({"t-1"}))
    assert any("2 Completed events" in line for line in found), found


def _resumed_run(resume_epoch: int | None, epochs: tuple[int, ...]) -> list[Event]:
    """Attempt 1 completes epochs 1 and 2 and dies; attempt 2 starts at `resume_epoch` and
    reports `epochs`, then completes."""
    script = TrainingScript("t-1")
    events: list[Event] = [script.requested(), script.started()]
    events += [script.epoch_completed(e, 0.5, total_epochs=4) for e in (1, 2)]
    second = script.started(attempt=2, trainer="t2")
    events.append(second.model_copy(update={"resume_epoch": resume_epoch}))
    events += [
        script.epoch_completed(e, 0.4, total_epochs=4, attempt=2, trainer="t2") for e in epochs
    ]
    return [*events, script.completed(attempt=2, trainer="t2")]


async def _check(tmp_path: Path, events: list[Event]) -> list[str]:
    async with migrated_sqlite(tmp_path / "log.db") as engine:
        store = SqlEventStore(engine)
        await store.append(events)
        return await violations(store, events, Expectations({"t-1"}))


async def test_a_resume_from_the_checkpoint_passes(tmp_path: Path) -> None:
    # Epoch 2's checkpoint (the start of epoch 3) may still have been in flight: epoch 2 again.
    assert await _check(tmp_path, _resumed_run(3, (3, 4))) == []
    (tmp_path / "b").mkdir()
    assert await _check(tmp_path / "b", _resumed_run(2, (2, 3, 4))) == []


async def test_a_resumed_attempt_that_starts_over_is_caught(tmp_path: Path) -> None:
    found = await _check(tmp_path, _resumed_run(None, (1, 2, 3, 4)))
    assert found == [
        "t-1: attempt 2 resumed at epoch None, but epoch 2 was complete and checkpointed"
    ], found


async def test_a_resumed_attempt_that_trains_earlier_epochs_again_is_caught(
    tmp_path: Path,
) -> None:
    found = await _check(tmp_path, _resumed_run(3, (2, 3, 4)))
    assert found == ["t-1: attempt 2 resumed at epoch 3 but trained epoch 2 again"], found
