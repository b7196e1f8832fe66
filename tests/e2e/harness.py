"""Real processes and real HTTP for the end-to-end tests.

`Process` runs a `ktrdr` command with its output in a log file. `SseReader` follows
`GET /trainings/{id}/events` over a real socket and parses the stream. Every wait has a
deadline and names what it waited for; a timeout shows the tail of every process's log.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.cli.client.sse import SseParser
from tests.support.auth import KEY_ENV

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KTRDR = Path(sys.executable).parent / "ktrdr"
START = "2017-01-02"  # three months of EURUSD 1h: a couple of seconds an epoch
END = "2017-03-31"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def migrate(env: dict[str, str], cwd: Path) -> None:
    """`ktrdr db upgrade` as the processes will see the database (their env), or fail with why."""
    migrated = subprocess.run(
        [str(KTRDR), "db", "upgrade"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr


def base_env(**extra: str) -> dict[str, str]:
    """PATH and HOME only (nothing leaks in from the test's environment), the test session's
    API key (as the bootstrap key and the CLI's key), plus `extra`."""
    import os

    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO),  # this checkout's code, whatever the venv's install points at
        **KEY_ENV,
        **extra,
    }


class Process:
    def __init__(
        self, name: str, args: list[str], *, env: Mapping[str, str], cwd: Path, logs: Path
    ) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            [str(KTRDR), *args], cwd=cwd, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")

    def stop(self, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()
        return self.popen.returncode


def diagnose(processes: list[Process]) -> str:
    return "\n".join(f"--- {p.name} (rc={p.popen.poll()}) ---\n{p.tail()}" for p in processes)


async def wait_ready(base_url: str, processes: list[Process], within_s: float = 90.0) -> None:
    """Poll GET /readyz until 200 (the API is up, its database, broker and schema are)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    last = "no answer"
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while loop.time() < deadline:
            for process in processes:
                process.check_alive()
            try:
                response = await client.get("/readyz")
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.TransportError as error:
                last = repr(error)
            await asyncio.sleep(0.1)  # nothing to wait on but the port itself
    raise AssertionError(f"{base_url} not ready within {within_s}s: {last}\n{diagnose(processes)}")


@dataclass
class Sse:
    id: int
    event: str
    data: dict[str, Any]


class SseReader:
    """One SSE connection; `async with SseReader(client, url, last_event_id=...)`."""

    def __init__(
        self, client: httpx.AsyncClient, path: str, *, last_event_id: int | None = None
    ) -> None:
        self.client, self.path = client, path
        self.headers = {"accept": "text/event-stream"}
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = str(last_event_id)
        self.received: list[Sse] = []
        self.ended = False
        self._stream: Any = None
        self._lines: Any = None
        self._parser = SseParser()

    async def __aenter__(self) -> SseReader:
        self._stream = self.client.stream(
            "GET", self.path, headers=self.headers, timeout=httpx.Timeout(10, read=None)
        )
        response = await self._stream.__aenter__()
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        self._lines = response.aiter_lines()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stream.__aexit__(*exc)  # closes the socket: a client going away

    async def next(self) -> Sse | None:
        """The next event (keep-alive comments skipped); None once the server ended."""
        async for line in self._lines:
            message = self._parser.feed(line)
            if message is None or message.event is None:
                continue  # a comment-only block (keep-alive)
            event = Sse(int(message.id), message.event, json.loads(message.data))
            self.received.append(event)
            return event
        self.ended = True
        return None

    async def until(self, predicate: Callable[[Sse], bool], within_s: float) -> Sse:
        async def scan() -> Sse:
            while (event := await self.next()) is not None:
                if predicate(event):
                    return event
            raise AssertionError(f"stream ended without the awaited event: {self.types()}")

        return await asyncio.wait_for(scan(), within_s)

    async def to_end(self, within_s: float) -> list[Sse]:
        async def drain() -> None:
            while await self.next() is not None:
                pass

        await asyncio.wait_for(drain(), within_s)
        return self.received

    def types(self) -> list[str]:
        return [e.event for e in self.received]


async def history(client: httpx.AsyncClient, training_id: str) -> list[dict[str, Any]]:
    """The whole JSON event log of a training, page by page."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (
            await client.get(
                f"/api/v1/trainings/{training_id}/events", params={"after": after, "limit": 200}
            )
        ).json()
        events += page["events"]
        if page["next"] is None:
            return events
        after = page["next"]


async def submit(client: httpx.AsyncClient, epochs: int, **extra: Any) -> str:
    body = {
        "strategy": "e2e_tiny",
        "start_date": START,
        "end_date": END,
        "overrides": {"epochs": epochs},
        "seed": 7,
        **extra,
    }
    response = await client.post("/api/v1/trainings", json=body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    return accepted["training_id"]
