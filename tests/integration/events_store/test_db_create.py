"""`ktrdr db upgrade` against a Postgres database that does not exist: one line saying so (no
traceback), and `--create` makes it, then migrates it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from libs.events.db import make_engine
from libs.events.migrate import schema_status
from tests.conftest import POSTGRES_HOST, POSTGRES_PORT
from tests.support.ktrdr_cli import run_ktrdr

pytestmark = pytest.mark.integration
SERVER = f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}"


async def test_a_missing_database_is_one_line_and_create_makes_it(
    postgres_available, tmp_path: Path
) -> None:
    name = f"ktrdr_missing_{uuid.uuid4().hex[:10]}"
    url = f"{SERVER}/{name}"
    try:
        missing = run_ktrdr(url, "db", "upgrade", cwd=tmp_path)
        assert missing.returncode == 2, missing.stderr
        assert missing.stderr.strip().count("\n") == 0, missing.stderr  # one line
        assert f"database '{name}' does not exist" in missing.stderr
        assert "--create" in missing.stderr and "Traceback" not in missing.stderr

        created = run_ktrdr(url, "db", "upgrade", "--create", cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        engine = make_engine(url)
        try:
            assert (await schema_status(engine)).at_head
        finally:
            await engine.dispose()
    finally:
        admin = make_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
