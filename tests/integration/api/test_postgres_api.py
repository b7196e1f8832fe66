"""The API on the real Postgres: live SSE through LISTEN/NOTIFY from another engine's commits,
resume with Last-Event-ID, concurrent submits with one Idempotency-Key, as_of."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.api.conftest import PgApi
from tests.support.auth import AUTH
from tests.unit.api.conftest import tiny_run
from tests.unit.api.sse_client import SseStream

pytestmark = pytest.mark.integration


async def _read(stream: SseStream, count: int) -> list:
    out = []
    async for item in stream.events(wait_s=5):
        if item.id is not None:
            out.append(item)
            if len(out) == count:
                break
    return out


async def test_live_stream_via_notify_with_resume(pg_api: PgApi) -> None:
    r = await pg_api.client.post("/api/v1/trainings", json={"strategy": "tiny_rsi"})
    assert r.status_code == 202, r.text
    tid = r.json()["training_id"]
    events = tiny_run(tid, epochs=2, batches=3)
    half = len(events) // 2
    url = f"/api/v1/trainings/{tid}/events"
    async with SseStream(pg_api.app, url, headers=AUTH) as first:
        seen = await _read(first, 1)
        assert seen[0].event == "TrainingRequested"
        for event in events[:half]:  # the projector commits, one event per transaction
            await pg_api.projector.append([event])
            seen += await _read(first, 1)  # arrives via NOTIFY: the poll is 30 s away
    await pg_api.projector.append(events[half:-1])
    async with SseStream(pg_api.app, url, headers={**AUTH, "Last-Event-ID": seen[-1].id}) as second:
        rest = await _read(second, len(events) - 1 - half)
        await pg_api.projector.append(events[-1:])
        rest += await _read(second, 1)
        tail = [item async for item in second.events(wait_s=5)]
    log = await pg_api.store.read_stream(tid)
    assert [int(i.id) for i in seen + rest] == [s.position for s in log]
    assert rest[-1].event == "Completed" and second.ended and tail == []
    view = (await pg_api.client.get(f"/api/v1/trainings/{tid}")).json()
    assert view["status"] == "completed" and view["position"] == log[-1].position


async def test_concurrent_submits_with_one_key_make_one_training(pg_api: PgApi) -> None:
    async def submit():
        return await pg_api.client.post(
            "/api/v1/trainings", json={"strategy": "tiny_rsi"}, headers={"Idempotency-Key": "same"}
        )

    answers = await asyncio.gather(*(submit() for _ in range(6)))
    assert {a.status_code for a in answers} == {202}
    ids = {a.json()["training_id"] for a in answers}
    assert len(ids) == 1
    assert len(await pg_api.store.read_stream(ids.pop())) == 1
    assert await pg_api.store.max_position() == 1


async def test_cancel_and_list_on_postgres(pg_api: PgApi) -> None:
    ids = []
    for _ in range(3):
        r = await pg_api.client.post("/api/v1/trainings", json={"strategy": "tiny_rsi"})
        ids.append(r.json()["training_id"])
    assert (await pg_api.client.post(f"/api/v1/trainings/{ids[0]}/cancel")).status_code == 202
    await pg_api.projector.append(tiny_run(ids[1], epochs=2, batches=2))
    page = (await pg_api.client.get("/api/v1/trainings", params={"limit": 2})).json()
    assert [i["training_id"] for i in page["items"]] == [ids[2], ids[1]]
    rest = (
        await pg_api.client.get("/api/v1/trainings", params={"limit": 2, "cursor": page["next"]})
    ).json()
    assert [i["training_id"] for i in rest["items"]] == [ids[0]] and rest["next"] is None
    assert rest["items"][0]["status"] == "cancelled"  # it was queued: final at once
    assert (await pg_api.client.post(f"/api/v1/trainings/{ids[1]}/cancel")).status_code == 409
    ready = await pg_api.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["notifications"]["ok"] is True
