"""Following a training's SSE stream from the client side, reconnecting with Last-Event-ID.

`follow()` yields each event once, in order, until the terminal event. After a dropped
connection (network error, read timeout with no keep-alive, a server restart, a stream that
ended early) it reconnects with `Last-Event-ID` = the last id it yielded, so the server resumes
exactly after it: no gap, no duplicate (ids are also checked to be increasing, as a guard).
Reconnects back off (BACKOFF_S, then its last step) and give up once the server has been gone
for `give_up_after_s`: a stopped server ends `ktrdr watch` with "cannot reach the API".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from libs.events.catalog import TERMINAL_TYPES
from services.cli.client.http import ApiClient, checked, unreachable

BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class StreamEvent:
    position: int
    type: str
    data: dict[str, Any]


@dataclass
class SseMessage:
    """One block of a text/event-stream: its fields, and its comment lines (keep-alives)."""

    id: str | None = None
    event: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def is_event(self) -> bool:
        """A block that dispatches an event (not just a keep-alive comment or a lone id)."""
        return bool(self.data) or self.event is not None


class SseParser:
    """The text/event-stream format, one line at a time (sync or async sources alike):
    `feed(line)` returns the block a blank line completes, None otherwise."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}
        self._data: list[str] = []
        self._comments: list[str] = []

    def feed(self, line: str) -> SseMessage | None:
        if line == "":
            if not (self._fields or self._data or self._comments):
                return None
            message = SseMessage(
                id=self._fields.get("id"),
                event=self._fields.get("event"),
                data="\n".join(self._data),
                comments=self._comments,
            )
            self._fields, self._data, self._comments = {}, [], []
            return message
        if line.startswith(":"):
            self._comments.append(line[1:].strip())
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name in ("id", "event"):
            self._fields[name] = value
        return None


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str | None, str | None, str]]:
    """(id, event, data) per dispatched block; comments (keep-alives) are skipped."""
    parser = SseParser()
    for line in lines:
        message = parser.feed(line)
        if message is not None and message.is_event:
            yield message.id, message.event, message.data


def follow(
    client: ApiClient,
    training_id: str,
    *,
    after: int = 0,
    read_timeout_s: float = 45.0,
    give_up_after_s: float = 120.0,
    on_reconnect: Callable[[int, str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[StreamEvent]:
    """Every event of the training after `after`, until (and including) its terminal event."""
    last = after
    failing_since: float | None = None
    attempt = 0
    while True:
        try:
            for event in _one_connection(client, training_id, last, read_timeout_s):
                last, failing_since, attempt = event.position, None, 0
                yield event
                if event.type in TERMINAL_TYPES:
                    return
            reason = "the stream ended before the terminal event"
        except (httpx.TransportError, httpx.StreamError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        now = clock()
        failing_since = failing_since or now
        if now - failing_since > give_up_after_s:
            raise unreachable(
                client.base_url,
                RuntimeError(f"gave up after {give_up_after_s:g} s of reconnecting: {reason}"),
            )
        if on_reconnect is not None:
            on_reconnect(last, reason)
        sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
        attempt += 1


def _one_connection(
    client: ApiClient, training_id: str, after: int, read_timeout_s: float
) -> Iterator[StreamEvent]:
    headers = {"Accept": "text/event-stream", "Last-Event-ID": str(after)}
    timeout = httpx.Timeout(10.0, read=read_timeout_s)
    with client.http.stream(
        "GET", client.events_url(training_id), headers=headers, timeout=timeout
    ) as response:
        if response.status_code >= 400:
            response.read()
            checked(response)  # raises ApiError: a 404 is not worth reconnecting for
        for ident, kind, data in parse_sse(response.iter_lines()):
            if ident is None:
                continue
            position = int(ident)
            if position <= after:  # never yield twice, whatever the server does
                continue
            after = position
            payload = json.loads(data) if data else {}
            yield StreamEvent(position, kind or payload.get("type", "message"), payload)


__all__ = ["SseMessage", "SseParser", "StreamEvent", "follow", "parse_sse"]
