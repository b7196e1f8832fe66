"""Twenty trainings submitted at once across the two trainers, with cancels of queued and of
running trainings, and an SSE client following every one of them to its end."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.harness import SseReader
from tests.reliability.rig import Rig

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(420)]

TRAININGS = 20
QUEUED_CANCELS = 3


async def test_twenty_trainings_with_cancels_and_sse_clients(rig: Rig) -> None:
    async with rig.client() as client:
        long_run = await rig.submit(client, epochs=300)  # minutes, unless cancelled
        others = TRAININGS - 1 - QUEUED_CANCELS
        rest = await asyncio.gather(*(rig.submit(client, epochs=1) for _ in range(others)))
        # Submitted once all the others are in the log (the concurrent ones above land in any
        # order), so they wait behind 16 others on two trainers: cancelled while queued.
        queued = await asyncio.gather(
            *(rig.submit(client, epochs=1) for _ in range(QUEUED_CANCELS))
        )
        rest += queued
        trainings = [long_run, *rest]
        streams = [
            asyncio.create_task(_follow(rig, client, training_id)) for training_id in trainings
        ]
        for training_id in queued:
            assert await rig.cancel(client, training_id) == 202
        await rig.until_training(client, long_run)
        assert await rig.cancel(client, long_run) == 202
        followed = await asyncio.wait_for(asyncio.gather(*streams), 360)
        views = await rig.until_terminal(client, trainings)

    for training_id, received in zip(trainings, followed, strict=True):
        rig.expect.streams[training_id] = [e.id for e in received]
        last = received[-1].event
        assert last in ("Completed", "Cancelled"), (training_id, [e.event for e in received])
    cancelled = {*queued, long_run}
    assert {t for t, v in views.items() if v["status"] == "cancelled"} == cancelled, views
    assert {v["status"] for t, v in views.items() if t not in cancelled} == {"completed"}, views
    for training_id in queued:  # cancelled before it started: no phase ever ran
        types = [e.event for e in followed[trainings.index(training_id)]]
        assert "PhaseStarted" not in types, types
    await rig.check()


async def _follow(rig: Rig, client, training_id: str) -> list:
    async with SseReader(client, f"/api/v1/trainings/{training_id}/events") as sse:
        return await sse.to_end(360)
