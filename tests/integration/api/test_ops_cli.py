"""`ktrdr dead` and `ktrdr trainers`, the real command in a subprocess against a real API server
(uvicorn on a loopback port, the in-memory stack): a poison message is listed with its cause,
shown, requeued (it comes back: it is still poison), and dropped."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from libs.events.settings import IN_MEMORY_DATABASE_URL
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.bootstrap import open_stack
from tests.support.auth import TEST_KEY
from tests.unit.api.conftest import REPO

pytestmark = pytest.mark.integration


async def ktrdr(url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "KTRDR_API_URL": url, "KTRDR_API_KEY": TEST_KEY}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from services.cli.app import main; main()",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Any]]:
    settings = ApiSettings(
        database_url=IN_MEMORY_DATABASE_URL,
        broker_url="memory://",
        topology_prefix=f"ops{uuid.uuid4().hex[:8]}.",
        strategies_dir=tmp_path,
        data_dir=REPO / "data",
        models_dir=tmp_path / "models",
        bootstrap_api_key=TEST_KEY,
    )
    async with open_stack(database=settings, broker=settings, connect="now") as stack:
        app = create_app(settings, stack=stack)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        try:
            yield f"http://127.0.0.1:{listener.getsockname()[1]}", stack.bus
        finally:
            server.should_exit = True
            await serving
            listener.close()


class Parked:
    """Set each time a message is published to the dead exchange (the in-memory broker's)."""

    def __init__(self, bus: Any) -> None:
        self.event = asyncio.Event()
        publish, dead_exchange = bus.broker.publish, bus.topology.dead_exchange

        def watched(message: Any) -> Any:
            targets = publish(message)
            if message.exchange == dead_exchange:
                self.event.set()
            return targets

        bus.broker.publish = watched

    async def next(self, within_s: float = 10.0) -> None:
        await asyncio.wait_for(self.event.wait(), within_s)
        self.event.clear()


async def test_ktrdr_dead_round_trips_a_poison_message(served: tuple[str, Any]) -> None:
    url, bus = served

    async def never_called(_delivery: Any) -> None:
        raise AssertionError("a poison body never reaches the handler")

    parked = Parked(bus)
    await bus.consume(bus.topology.projector_queue, never_called)  # its consumer parks poison
    bus.broker.inject(bus.topology.events_exchange, "training.requested.any", b"not json")
    await parked.next()

    code, out, err = await ktrdr(url, "dead", "list", "--json")
    assert code == 0, err
    (item,) = json.loads(out)
    assert item["reason_kind"] == "undecodable" and item["reason"].startswith("not an event")
    assert item["queue"] == bus.topology.projector_queue
    assert item["routing_key"] == "training.requested.any"
    letter = item["id"]

    code, out, err = await ktrdr(url, "dead", "show", letter)
    assert code == 0, err
    assert json.loads(out)["body"] == "not json"

    code, out, err = await ktrdr(url, "dead", "requeue", letter)
    assert code == 0 and f"requeued {letter}" in out, err
    await parked.next()  # published again, still poison, parked again by the projector queue
    code, out, _ = await ktrdr(url, "dead", "list")
    assert letter in out and "undecodable" in out

    code, out, err = await ktrdr(url, "dead", "drop", letter)
    assert code == 0 and f"dropped {letter}" in out, err
    code, out, _ = await ktrdr(url, "dead", "list")
    assert code == 0 and "no dead letters" in out

    code, _, err = await ktrdr(url, "dead", "show", letter)
    assert code == 2 and "not found" in err and len(err.strip().splitlines()) == 1


async def test_ktrdr_trainers_shows_the_request_queues(served: tuple[str, Any]) -> None:
    url, bus = served
    code, out, err = await ktrdr(url, "trainers", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["trainers"] == []
    queues = {q["device"]: q for q in answer["queues"]}
    assert set(queues) == {"any", "cpu", "cuda", "mps"}
    assert all(q["messages"] == 0 and q["consumers"] == 0 for q in queues.values())
