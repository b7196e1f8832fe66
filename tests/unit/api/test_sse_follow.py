"""follow_training against a counting in-memory store: which notifications cost a read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from libs.events.notify.inprocess import InProcessNotifier
from libs.events.notify.port import RESYNC, Notification
from libs.events.store.port import StoredEvent
from services.api.sse import follow_training
from tests.support import events as make


class CountingStore:
    def __init__(self, events: list) -> None:
        self.log = [StoredEvent(i, datetime.now(UTC), e) for i, e in enumerate(events, 1)]
        self.reads = 0

    async def get_training(self, training_id: str) -> None:
        return None  # not terminal (nor known): follow it

    async def read_stream(self, training_id: str, after: int = 0, limit: int | None = None):
        self.reads += 1
        return [s for s in self.log if s.position > after][:limit]

    def append(self, event) -> Notification:
        self.log.append(StoredEvent(len(self.log) + 1, datetime.now(UTC), event))
        return Notification(len(self.log), event.training_id, event.type)


class Hints:
    """A notifier with one subscription that says when the reader waits for the next hint."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Notification] = asyncio.Queue()
        self.waiting = asyncio.Event()

    def subscribe(self) -> Hints:
        return self

    async def get(self, timeout: float | None = None) -> Notification:  # noqa: ASYNC109
        self.waiting.set()
        return await self.queue.get()

    def close(self) -> None:
        pass

    async def deliver_and_wait_until_handled(self, note: Notification) -> None:
        self.waiting.clear()
        self.queue.put_nowait(note)
        await asyncio.wait_for(self.waiting.wait(), 5)  # back for the next one


async def test_a_notification_at_or_below_what_was_sent_costs_no_read() -> None:
    tid = make.training_id()
    store = CountingStore([make.requested(tid=tid), make.progress(tid, batch=1)])
    hints = Hints()
    stream = follow_training(store, hints, tid, 0, keepalive_s=60, poll_s=60)
    backlog = [await anext(stream), await anext(stream)]
    assert [item.id for item in backlog] == ["1", "2"] and store.reads == 1
    next_item = asyncio.ensure_future(anext(stream))
    await asyncio.wait_for(hints.waiting.wait(), 5)

    await hints.deliver_and_wait_until_handled(Notification(2, tid, "BatchProgress"))
    assert store.reads == 1  # a hint for position 2, already sent: no read

    await hints.deliver_and_wait_until_handled(RESYNC)  # after a reconnect: always look
    assert store.reads == 2 and not next_item.done()

    hints.queue.put_nowait(store.append(make.progress(tid, batch=2)))
    assert (await asyncio.wait_for(next_item, 5)).id == "3" and store.reads == 3
    await stream.aclose()


async def test_a_stream_ends_once_its_callers_key_is_no_longer_usable() -> None:
    tid = make.training_id()
    store = CountingStore([make.requested(tid=tid)])
    notifier = InProcessNotifier()
    await notifier.start()
    allowed = True
    asked = asyncio.Event()

    async def still_allowed() -> bool:
        asked.set()
        return allowed

    stream = follow_training(
        store,
        notifier,
        tid,
        0,
        keepalive_s=60,
        poll_s=60,
        still_allowed=still_allowed,
        recheck_s=0.01,
    )
    assert (await anext(stream)).id == "1"
    following = asyncio.ensure_future(anext(stream))
    await asyncio.wait_for(asked.wait(), 5)  # it re-checks while the training is quiet
    assert not following.done()
    allowed = False  # revoked
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(following, 5)
    await notifier.stop()
