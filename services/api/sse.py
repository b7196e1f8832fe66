"""Following one training's event stream: replay from the store, then live (architecture.md §6).

The no-gap, no-duplicate guarantee rests on three facts:
1. appends are serialised, so positions appear in commit order: a reader that has seen position
   N never later finds a smaller one;
2. we subscribe to commit notifications BEFORE reading the backlog, so a commit that lands
   between the backlog read and the first wait still wakes us;
3. every read is `read_stream(after=last_sent)`: a notification only says "look again", the
   store says what is new, so duplicated, coalesced or lost notifications cannot duplicate or
   drop an event (a slow poll is the safety net for lost ones). A notification at or below
   what was already sent needs no read: positions are committed in order, so that read
   happened after the commit it announces.
Reads are lone SELECTs, which the SQL store runs in AUTOCOMMIT on Postgres: one read per commit is
the stream's hot path, and a lone SELECT needs no BEGIN / ROLLBACK round trips.
The stream ends right after the first terminal event (Completed, Failed, Cancelled); a client
resuming after that event gets an empty stream that ends at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.sse import ServerSentEvent

from libs import metrics
from libs.events.codec import to_dict
from libs.events.notify.port import RESYNC

PAGE = 500


def event_json(stored: Any) -> dict[str, Any]:
    """The JSON of a stored event: the flat event plus its global `position`."""
    body = to_dict(stored.event)
    body["position"] = stored.position
    recorded_at = getattr(stored, "recorded_at", None)
    body["recorded_at"] = recorded_at.isoformat() if recorded_at is not None else None
    return body


def to_sse(stored: Any) -> ServerSentEvent:
    return ServerSentEvent(
        id=str(stored.position),
        event=stored.event.type,
        raw_data=json.dumps(event_json(stored), separators=(",", ":")),
    )


def keepalive() -> ServerSentEvent:
    return ServerSentEvent(comment="keep-alive")


async def follow_training(
    store: Any,
    notifier: Any,
    training_id: str,
    after: int,
    *,
    keepalive_s: float,
    poll_s: float,
    still_allowed: Callable[[], Awaitable[bool]] | None = None,
    recheck_s: float = 5.0,
    stopping: asyncio.Event | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """SSE items for `training_id` after position `after`, until its terminal event; or until
    `still_allowed` (asked every `recheck_s` seconds at most) says the caller may no longer
    read it (a revoked or expired key): the stream then just ends, and the client's reconnect
    gets its 401. When `stopping` is set (the server is shutting down) the stream ends at once
    with a final comment; the client reconnects with Last-Event-ID and loses nothing."""
    subscription = notifier.subscribe()  # before the backlog read: see fact 2 above
    metrics.SSE_SUBSCRIBERS.inc()
    try:
        # Read the state BEFORE the backlog: if it was terminal then, its terminal event is in
        # the log already, so the backlog read below covers it (or the client is past it).
        state = await store.get_training(training_id)
        already_terminal = state is not None and state.is_terminal
        cursor = _Cursor(after)
        async for item in _read_new(store, training_id, cursor):
            yield item
        if cursor.finished or already_terminal:
            return
        loop = asyncio.get_running_loop()
        quiet_since = checked_at = loop.time()
        while True:
            if still_allowed is not None and loop.time() - checked_at >= recheck_s:
                if not await still_allowed():
                    return
                checked_at = loop.time()
            idle_left = keepalive_s - (loop.time() - quiet_since)
            if idle_left <= 0:
                yield keepalive()
                quiet_since = loop.time()
                continue
            wait = min(poll_s, idle_left, recheck_s if still_allowed is not None else poll_s)
            note = await _next_note(subscription, wait, stopping)
            if stopping is not None and stopping.is_set():
                yield ServerSentEvent(comment=SHUTDOWN_COMMENT)
                return
            if note is not None and note.training_id not in (None, training_id):
                continue  # another training's commit
            if note is not None and note != RESYNC and note.position <= cursor.position:
                continue  # already sent: a read after its commit covered it
            async for item in _read_new(store, training_id, cursor):
                yield item
                quiet_since = loop.time()
            if cursor.finished:
                return
    finally:
        metrics.SSE_SUBSCRIBERS.dec()
        subscription.close()


SHUTDOWN_COMMENT = "server shutting down; reconnect with Last-Event-ID"


async def _next_note(subscription: Any, wait: float, stopping: asyncio.Event | None) -> Any:
    """The next notification within `wait` seconds (None if none), or None as soon as
    `stopping` is set."""
    if stopping is None:
        return await subscription.get(timeout=wait)
    if stopping.is_set():
        return None
    note = asyncio.ensure_future(subscription.get(timeout=wait))
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({note, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not note.done():
            note.cancel()
    return note.result() if note.done() and not note.cancelled() else None


class _Cursor:
    def __init__(self, position: int) -> None:
        self.position = position
        self.finished = False


async def _read_new(
    store: Any, training_id: str, cursor: _Cursor
) -> AsyncIterator[ServerSentEvent]:
    while not cursor.finished:
        batch = await store.read_stream(training_id, after=cursor.position, limit=PAGE)
        for stored in batch:
            cursor.position = stored.position
            metrics.SSE_EVENTS_SENT.inc()
            yield to_sse(stored)
            if stored.event.is_terminal:
                cursor.finished = True
                return
        if len(batch) < PAGE:
            return
