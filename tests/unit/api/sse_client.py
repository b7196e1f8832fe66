"""A streaming ASGI client for SSE tests: httpx's ASGITransport buffers the whole response,
which never ends for a live stream. This calls the app directly and yields the messages as they
are sent (parsed by the CLI's SseParser), and can disconnect like a browser closing the tab.
It sends the `api` fixture's default key (a trainer-user of tenant "default") unless `headers`
carry an Authorization of their own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from services.cli.client.sse import SseMessage, SseParser


class SseStream:
    def __init__(
        self, app: Any, path: str, headers: dict[str, str] | None = None, query: str = ""
    ) -> None:
        self.app, self.path, self.query = app, path, query
        from tests.unit.api.conftest import bearer, session_key

        self.headers = {
            "accept": "text/event-stream",
            **bearer(session_key()[0]),
            **(headers or {}),
        }
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}
        self._messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._disconnect = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._buffer = ""
        self.ended = False

    async def __aenter__(self) -> SseStream:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": self.query.encode(),
            "root_path": "",
            "server": ("api", 80),
            "client": ("test", 1234),
            "headers": [(k.lower().encode(), v.encode()) for k, v in self.headers.items()],
        }
        sent_request = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self._disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            await self._messages.put(message)

        self._task = asyncio.create_task(self.app(scope, receive, send))
        start = await asyncio.wait_for(self._messages.get(), 5)
        self.status = start["status"]
        self.response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.disconnect()

    async def disconnect(self) -> None:
        self._disconnect.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)

    async def events(self, wait_s: float = 5.0) -> AsyncIterator[SseMessage]:
        """Parsed events (and comment-only blocks) until the server ends the stream."""
        while True:
            while "\n\n" not in self._buffer:
                if self.ended:
                    return
                message = await asyncio.wait_for(self._messages.get(), wait_s)
                self._buffer += message.get("body", b"").decode()
                if not message.get("more_body", False):
                    self.ended = True
            block, self._buffer = self._buffer.split("\n\n", 1)
            parser = SseParser()
            for line in block.split("\n"):
                parser.feed(line)
            yield parser.feed("") or SseMessage()
