"""Client input that would overflow or upset a SQL driver (a position beyond 64 bits, a NUL
byte in an id) is a 4xx on the SQL stores too: the app on a migrated SQLite file, and on the
real Postgres."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from libs.events.migrate import upgrade_engine
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.bootstrap import open_stack
from tests.integration.api.conftest import PgApi
from tests.support.auth import AUTH, TEST_KEY
from tests.unit.api.conftest import REPO
from tests.unit.api.test_client_input import check_trainings_input


async def test_out_of_range_positions_and_nul_ids_are_refused_on_sqlite(
    tmp_path: Path, strategies_dir: Path
) -> None:
    settings = ApiSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ktrdr.db'}",
        broker_url="memory://",
        strategies_dir=strategies_dir,
        data_dir=REPO / "data",
        models_dir=tmp_path / "models",
        bootstrap_api_key=TEST_KEY,
    )
    async with open_stack(database=settings, broker=settings, connect="now") as stack:
        await upgrade_engine(stack.engine)
        app = create_app(settings, stack=stack)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api", headers=AUTH
            ) as client,
        ):
            await check_trainings_input(client, stack.store)


@pytest.mark.integration
async def test_out_of_range_positions_and_nul_ids_are_refused_on_postgres(pg_api: PgApi) -> None:
    await check_trainings_input(pg_api.client, pg_api.store)
