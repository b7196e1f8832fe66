"""Shutting the API down with an SSE stream open: the stream ends at once with a final comment
(the client reconnects with Last-Event-ID), and the server stops without waiting out its
graceful-shutdown timeout on a stream that would never end by itself."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import httpx
import pytest
import uvicorn

from libs.events.settings import IN_MEMORY_DATABASE_URL
from services.api.app import create_app
from services.api.server import ApiServer
from services.api.settings import ApiSettings
from services.api.sse import SHUTDOWN_COMMENT
from services.bootstrap import open_stack
from tests.support.auth import AUTH, TEST_KEY
from tests.unit.api.conftest import REPO, requested

pytestmark = pytest.mark.integration
NEVER = 120  # the graceful-shutdown timeout: a server that waits on the stream hits the bound


async def test_open_streams_end_with_a_final_comment_on_shutdown(tmp_path: Path) -> None:
    settings = ApiSettings(
        database_url=IN_MEMORY_DATABASE_URL,
        broker_url="memory://",
        topology_prefix=f"sd{uuid.uuid4().hex[:8]}.",
        strategies_dir=tmp_path,
        data_dir=REPO / "data",
        models_dir=tmp_path / "models",
        bootstrap_api_key=TEST_KEY,
        sse_keepalive_s=NEVER,
        sse_poll_s=NEVER,
    )
    async with open_stack(database=settings, broker=settings, connect="now") as stack:
        training_id = await requested(stack.store)  # queued: its stream stays open
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(settings, stack=stack),
            lifespan="on",
            log_level="warning",
            timeout_graceful_shutdown=NEVER,
        )
        server = ApiServer(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        lines: list[str] = []
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=NEVER) as client:
            path = f"/api/v1/trainings/{training_id}/events"
            headers = {"Accept": "text/event-stream"}
            async with client.stream("GET", path, headers=headers) as stream:
                async for line in stream.aiter_lines():
                    lines.append(line)
                    if line.startswith("event: TrainingRequested"):
                        server.should_exit = True  # what SIGTERM does
            # The stream ended (the loop above returned): the server closed it.
        await asyncio.wait_for(serving, NEVER / 4)
        listener.close()
    assert any(line.startswith("event: TrainingRequested") for line in lines)
    assert f": {SHUTDOWN_COMMENT}" in lines
