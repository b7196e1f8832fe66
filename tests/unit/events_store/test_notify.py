"""InProcessNotifier: fan-out, waiting for a position, overflow, unsubscribe (no I/O)."""

from __future__ import annotations

import asyncio

from libs.events.notify import inprocess, make_notifier
from libs.events.notify.inprocess import InProcessNotifier
from libs.events.notify.port import RESYNC, Notification


async def test_every_subscriber_gets_every_notification_in_order():
    notifier = InProcessNotifier()
    a, b = notifier.subscribe(), notifier.subscribe()
    notes = [Notification(1, "t-1", "TrainingRequested"), Notification(2, "t-2", "Started")]
    notifier.publish(notes)
    assert [await a.get(1), await a.get(1)] == notes
    assert [await b.get(1), await b.get(1)] == notes
    assert await a.get(timeout=0.01) is None
    assert notifier.last_position == 2


async def test_async_iteration_and_closing():
    notifier = InProcessNotifier()
    async with notifier.subscribe() as sub:
        notifier.publish([Notification(5, "t", "Started")])
        async for note in sub:
            assert note.position == 5
            break
    notifier.publish([Notification(6, "t", "Started")])  # closed: nothing queued, no error
    assert sub._queue.empty()


async def test_wait_for_change_returns_at_once_when_already_past():
    notifier = InProcessNotifier()
    notifier.publish([Notification(10, "t", "Started")])
    assert await notifier.wait_for_change(9, timeout=0)
    assert not await notifier.wait_for_change(10, timeout=0.01)


async def test_wait_for_change_wakes_on_a_later_publish_and_ignores_older_positions():
    notifier = InProcessNotifier()
    notifier.publish([Notification(3, "t", "Started")])
    waiter = asyncio.create_task(notifier.wait_for_change(5, timeout=5))
    await asyncio.sleep(0)  # let the waiter start waiting (ordering only, not a timing guess)
    notifier.publish([Notification(4, "t", "BatchProgress")])  # not past 5: keeps waiting
    await asyncio.sleep(0)
    assert not waiter.done()
    notifier.publish([Notification(6, "t", "BatchProgress")])
    assert await asyncio.wait_for(waiter, 1)


async def test_a_resync_wakes_waiters_even_without_a_new_position():
    notifier = InProcessNotifier()
    waiter = asyncio.create_task(notifier.wait_for_change(100, timeout=5))
    await asyncio.sleep(0)
    notifier.publish([RESYNC])
    assert await asyncio.wait_for(waiter, 1)


async def test_a_subscriber_that_falls_behind_gets_one_resync(monkeypatch):
    monkeypatch.setattr(inprocess, "SUBSCRIBER_QUEUE_SIZE", 3)
    notifier = InProcessNotifier()
    sub = notifier.subscribe()
    notifier.publish([Notification(i, "t", "BatchProgress") for i in range(1, 5)])
    assert await sub.get(1) == RESYNC
    assert await sub.get(0.01) is None


def test_notification_json_round_trip_and_factory():
    note = Notification(42, None, "Completed")
    assert Notification.from_json(note.to_json()) == note
    assert isinstance(make_notifier("sqlite+aiosqlite:///x.db"), InProcessNotifier)
    assert type(make_notifier("postgresql+asyncpg://u@h/db")).__name__ == "PostgresNotifier"
