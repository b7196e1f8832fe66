"""GET /readyz against a real database file nobody migrated: reachable, but not at head."""

from __future__ import annotations

from pathlib import Path

import httpx

from libs.events.migrate import migration_heads, upgrade_engine
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.bootstrap import open_stack


async def test_readyz_names_the_failing_checks_of_an_unmigrated_database(tmp_path: Path) -> None:
    settings = ApiSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", broker_url="memory://"
    )
    async with open_stack(database=settings, broker=settings) as stack:  # the bus never started
        app = create_app(settings, stack=stack)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://api") as client,
        ):
            body = (await client.get("/readyz")).json()
    assert set(body["failed"]) == {"migrations", "broker"}
    assert "ktrdr db upgrade" in body["checks"]["migrations"]["detail"]


async def test_readyz_reports_the_schema_at_head_once_migrated(tmp_path: Path) -> None:
    settings = ApiSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ktrdr.db'}", broker_url="memory://"
    )
    async with open_stack(database=settings, broker=settings, connect="now") as stack:
        await upgrade_engine(stack.engine)
        status = await stack.schema_status()
        assert status is not None and status.at_head and status.current == migration_heads()
        app = create_app(settings, stack=stack)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://api") as client,
        ):
            body = (await client.get("/readyz")).json()
    assert body["failed"] == []
    assert body["checks"]["database"]["detail"] == "sqlite reachable"
    assert body["checks"]["migrations"]["detail"].startswith("at head")
