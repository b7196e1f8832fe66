"""A real Postgres outage under a real API server: a private cluster (never the shared one) is
stopped while a client holds one keep-alive connection to uvicorn. Every request during the
outage is a 503 problem with Retry-After (never a 500), the connection survives it, and once
the cluster is back the same connection gets its 200s again."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from pathlib import Path

import httpx
import pytest
import uvicorn

from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.support.auth import AUTH, TEST_KEY
from tests.support.private_servers import PrivatePostgres, server_bin
from tests.unit.api.conftest import REPO

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        server_bin() is None and os.environ.get("CI") != "true",
        reason="PostgreSQL server binaries not installed",
    ),
]


@pytest.fixture
def cluster():
    server = PrivatePostgres(Path(tempfile.mkdtemp(prefix="ktrdr-pg-")))
    server.start()
    try:
        yield server
    finally:
        server.destroy()


def _local_address(response: httpx.Response) -> tuple[str, int]:
    """The client side of the TCP connection that carried `response`."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


async def test_503_during_a_postgres_outage_and_the_keep_alive_connection_survives(
    cluster: PrivatePostgres, tmp_path: Path
) -> None:
    engine = make_engine(cluster.url)
    await upgrade_engine(engine)
    await engine.dispose()
    settings = ApiSettings(
        database_url=cluster.url,
        broker_url="memory://",
        strategies_dir=tmp_path,
        data_dir=REPO / "data",
        models_dir=tmp_path / "models",
        bootstrap_api_key=TEST_KEY,
        run_relay=False,
    )
    # Listening before uvicorn starts: the first request waits in the backlog, no polling.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=AUTH, limits=limits, timeout=30
        ) as client:
            before = await client.get("/api/v1/trainings")
            assert before.status_code == 200, before.text
            connection = _local_address(before)

            await asyncio.to_thread(cluster.stop)
            for path in ("/api/v1/trainings", "/api/v1/trainings/x", "/api/v1/strategies"):
                during = await client.get(path)
                assert during.status_code == 503, (path, during.text)
                assert during.headers["content-type"].startswith("application/problem+json")
                assert during.headers["retry-after"].isdigit()
                assert "database" in during.json()["detail"]
                assert _local_address(during) == connection  # no reset, same connection

            await asyncio.to_thread(cluster.start)
            after = await client.get("/api/v1/trainings")
            assert after.status_code == 200, after.text
            assert _local_address(after) == connection
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 30)
        listener.close()
