"""GET /trainings/{id}/events: the JSON audit log and the SSE stream (replay, resume with
Last-Event-ID with no gap and no duplicate, live follow, keep-alives, end at the terminal event,
disconnect cleanup). A "trainer" is simulated by appending its events to the store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from services.cli.client.sse import SseMessage
from tests.unit.api.conftest import Api, bearer, requested, tiny_run
from tests.unit.api.sse_client import SseStream


def path(tid: str) -> str:
    return f"/api/v1/trainings/{tid}/events"


async def collect(
    stream: SseStream, *, until_ended: bool = True, count: int | None = None, wait_s: float = 5.0
) -> list[SseMessage]:
    out = []
    async for item in stream.events(wait_s=wait_s):
        if item.id is None:  # keep-alive comment
            continue
        out.append(item)
        if count is not None and len(out) == count:
            break
    assert not until_ended or stream.ended or count is not None
    return out


async def test_json_log_paginates_with_after_and_limit(api: Api) -> None:
    tid = await requested(api.store)
    await api.store.append(tiny_run(tid, epochs=2, batches=2))
    log = await api.store.read_stream(tid)
    got, after = [], 0
    while True:
        page = (await api.client.get(path(tid), params={"after": after, "limit": 4})).json()
        got += page["events"]
        if page["next"] is None:
            break
        after = page["next"]
    assert [e["position"] for e in got] == [s.position for s in log]
    assert [e["event_id"] for e in got] == [str(s.event.event_id) for s in log]
    assert got[0]["type"] == "TrainingRequested" and got[-1]["type"] == "Completed"


async def test_sse_replays_everything_and_ends_after_the_terminal_event(api: Api) -> None:
    tid = await requested(api.store)
    await api.store.append(tiny_run(tid, epochs=2, batches=2))
    log = await api.store.read_stream(tid)
    async with SseStream(api.app, path(tid)) as stream:
        assert stream.status == 200
        assert stream.response_headers["content-type"].startswith("text/event-stream")
        items = await collect(stream)
    assert [int(i.id) for i in items] == [s.position for s in log]
    assert [i.event for i in items] == [s.event.type for s in log]
    data = json.loads(items[-1].data)
    assert data["position"] == log[-1].position and data["type"] == "Completed"
    assert stream.ended


async def test_resume_with_last_event_id_gives_exactly_the_rest(api: Api) -> None:
    tid = await requested(api.store)
    await api.store.append(tiny_run(tid, epochs=2, batches=2))
    log = await api.store.read_stream(tid)
    cut = log[7].position
    async with SseStream(api.app, path(tid), headers={"Last-Event-ID": str(cut)}) as stream:
        items = await collect(stream)
    assert [int(i.id) for i in items] == [s.position for s in log[8:]]
    async with SseStream(api.app, path(tid), query=f"after={cut}") as stream:  # same via ?after
        assert [int(i.id) for i in await collect(stream)] == [s.position for s in log[8:]]


async def test_resume_after_the_terminal_event_ends_at_once(api: Api) -> None:
    tid = await requested(api.store)
    await api.store.append(tiny_run(tid, epochs=2, batches=2))
    last = await api.store.max_position()
    async with SseStream(api.app, path(tid), headers={"Last-Event-ID": str(last)}) as stream:
        assert await collect(stream) == []
        assert stream.ended


async def test_live_follow_with_disconnect_and_resume_has_no_gap_and_no_duplicate(
    api: Api,
) -> None:
    tid = await requested(api.store)
    events = tiny_run(tid, epochs=3, batches=3)
    half = len(events) // 2
    await api.store.append(events[:5])
    async with SseStream(api.app, path(tid)) as first:
        seen = await collect(first, count=6)  # the request + the first five trainer events
        for event in events[5:half]:  # the trainer goes on while we watch, one commit each
            await api.store.append([event])
        seen += await collect(first, count=half - 5)
    # Disconnected; the trainer keeps going; the client comes back with Last-Event-ID.
    await api.store.append(events[half:-3])
    async with SseStream(api.app, path(tid), headers={"Last-Event-ID": seen[-1].id}) as second:
        resumed = await collect(second, count=len(events) - 3 - half)
        await api.store.append(events[-3:])
        resumed += await collect(second)
    log = await api.store.read_stream(tid)
    union = [int(i.id) for i in seen + resumed]
    assert union == [s.position for s in log]  # in order, nothing missing, nothing twice
    assert resumed[-1].event in {"Completed"} and second.ended


async def test_keepalive_comments_while_idle(api: Api) -> None:
    tid = await requested(api.store)
    async with SseStream(api.app, path(tid)) as stream:
        blocks = []
        async for block in stream.events(wait_s=5):
            blocks.append(block)
            if block.comments:
                break
    assert blocks[0].event == "TrainingRequested"
    assert blocks[-1].comments == ["keep-alive"] and blocks[-1].id is None


async def test_disconnect_releases_the_subscription(api: Api) -> None:
    class Counting:
        def __init__(self, inner) -> None:
            self.inner, self.open = inner, 0
            self.all_closed = asyncio.Event()

        def subscribe(self):
            sub, outer = self.inner.subscribe(), self
            outer.open += 1
            close = sub.close

            def closing() -> None:
                outer.open -= 1
                close()
                if outer.open == 0:
                    outer.all_closed.set()

            sub.close = closing
            return sub

    counting = Counting(api.notifier)
    api.app.state.components.notifier = counting
    tid = await requested(api.store)
    stream = SseStream(api.app, path(tid))
    await stream.__aenter__()
    await collect(stream, count=1)
    assert counting.open == 1
    await stream.disconnect()
    await asyncio.wait_for(counting.all_closed.wait(), 5)
    assert counting.open == 0


async def test_bad_last_event_id_and_unknown_training(api: Api) -> None:
    tid = await requested(api.store)
    async with SseStream(api.app, path(tid), headers={"Last-Event-ID": "abc"}) as stream:
        assert stream.status == 422
    async with SseStream(api.app, path("nope")) as stream:
        assert stream.status == 404
    assert (await api.client.get(path("nope"))).status_code == 404


async def test_an_open_stream_ends_when_its_key_is_revoked(api: Api) -> None:
    tid = await requested(api.store)
    key = await api.key("reader")
    key_id = key.split("_")[1]
    async with SseStream(api.app, path(tid), headers=bearer(key)) as stream:
        first = await collect(stream, until_ended=False, count=1)
        assert first[0].event == "TrainingRequested"
        await api.store.revoke_api_key(key_id, datetime.now(UTC))
        # It ends by itself within the recheck interval (keep-alives alone would go on forever).
        rest = await asyncio.wait_for(collect(stream, wait_s=5), 10)
    assert rest == [] and stream.ended
    async with SseStream(api.app, path(tid), headers=bearer(key)) as again:
        assert again.status == 401
