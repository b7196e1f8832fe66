"""`ktrdr up` with KTRDR_DATABASE_URL=memory://: the in-memory store has no schema, so there is
nothing to migrate or check; the whole stack serves and stops cleanly on a signal."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from libs.events.settings import IN_MEMORY_DATABASE_URL
from services.api.settings import ApiSettings
from services.cli.embedded import StartupError, UpOptions, _should_migrate, bind, serve
from tests.support.auth import AUTH, TEST_KEY


def test_the_in_memory_store_is_never_migrated() -> None:
    assert _should_migrate(IN_MEMORY_DATABASE_URL, migrate=None) is False
    assert _should_migrate(IN_MEMORY_DATABASE_URL, migrate=True) is False
    assert _should_migrate("sqlite+aiosqlite:///./x.db", migrate=None) is True
    assert _should_migrate("postgresql+asyncpg://h/db", migrate=None) is False
    with pytest.raises(StartupError, match="KTRDR_DATABASE_URL"):
        _should_migrate("mysql://h/db", migrate=None)


async def test_up_serves_on_the_in_memory_store_and_stops_on_sigint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the trainer's default folders, should it make any
    for name, value in {
        "KTRDR_DATABASE_URL": IN_MEMORY_DATABASE_URL,
        "KTRDR_BROKER_URL": "memory://",
        "KTRDR_DEVICE": "cpu",
        "KTRDR_BOOTSTRAP_API_KEY": TEST_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    settings = ApiSettings(host="127.0.0.1")
    listener = bind("127.0.0.1", 0)
    port = listener.getsockname()[1]
    announced = asyncio.Event()
    up = asyncio.create_task(
        serve(settings, listener, UpOptions(), announce=lambda _line: announced.set())
    )
    try:
        # `serve` installs its signal handlers right after announcing, in the same step.
        waiting = asyncio.ensure_future(announced.wait())
        await asyncio.wait({up, waiting}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if up.done():
            up.result()  # raises what stopped it
        assert announced.is_set(), "ktrdr up did not announce within 60 s"

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as client:
            ready = (await client.get("/readyz")).json()
            listed = await client.get("/api/v1/trainings")
        assert ready["failed"] == [], ready
        assert ready["checks"]["database"]["detail"] == "in-memory store"
        assert ready["checks"]["migrations"]["detail"] == "in-memory store: no schema"
        assert listed.status_code == 200 and listed.json()["items"] == []

        os.kill(os.getpid(), signal.SIGINT)
        assert await asyncio.wait_for(up, 30) == 0
    finally:
        if not up.done():
            up.cancel()
        listener.close()
