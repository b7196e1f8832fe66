"""Migrations: the real `ktrdr db` CLI round-trips an empty database, and the migrated schema
equals the SQLAlchemy metadata (autogenerate finds nothing to do) on both backends."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from libs.events.db import make_engine
from libs.events.migrate import (
    current_revision,
    downgrade_engine,
    migration_heads,
    upgrade_engine,
)
from libs.events.tables import metadata
from tests.support.ktrdr_cli import run_ktrdr
from tests.support.postgres import PG_URL

TABLES = {t.name for t in metadata.sorted_tables}


def ktrdr(url: str, *args: str, cwd: Path) -> str:
    done = run_ktrdr(url, *args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


async def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    await engine.dispose()
    return names


async def cli_round_trip(url: str, cwd: Path) -> None:
    (head,) = migration_heads()  # one line of migrations: a second head is a merge to make
    assert head in ktrdr(url, "db", "upgrade", cwd=cwd)
    assert await table_names(url) == TABLES | {"alembic_version"}
    assert f"{head} (head)" in ktrdr(url, "db", "current", cwd=cwd)
    ktrdr(url, "db", "downgrade", "base", cwd=cwd)
    assert await table_names(url) == {"alembic_version"}
    ktrdr(url, "db", "upgrade", cwd=cwd)
    assert await table_names(url) == TABLES | {"alembic_version"}


async def test_cli_upgrade_downgrade_upgrade_on_sqlite(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'k.db'}"  # folder created on demand
    await cli_round_trip(url, cwd=tmp_path)


@pytest.mark.integration
async def test_cli_upgrade_downgrade_upgrade_on_a_fresh_postgres_database(
    postgres_available, tmp_path
):
    name = f"ktrdr_mig_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        await cli_round_trip(PG_URL.rsplit("/", 1)[0] + f"/{name}", cwd=tmp_path)
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_migrated_schema_matches_the_metadata(engine):
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), metadata
            )
        )
    assert diff == []
    # Autogenerate does not compare primary keys: compare them here, columns in order.
    async with engine.connect() as conn:
        migrated = await conn.run_sync(
            lambda c: {
                name: sa.inspect(c).get_pk_constraint(name)["constrained_columns"]
                for name in TABLES
            }
        )
    assert migrated == {
        t.name: [c.name for c in t.primary_key.columns] for t in metadata.tables.values()
    }
    assert migrated["models"] == ["tenant", "strategy", "timeframe", "version"]
    assert migrated["model_aliases"] == ["tenant", "strategy", "timeframe", "alias"]
    assert {await current_revision(engine)} == migration_heads()


async def test_downgrade_to_base_and_back_through_an_engine(engine):
    await downgrade_engine(engine, "base")
    assert await current_revision(engine) is None
    async with engine.connect() as conn:
        left = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert left & TABLES == set()
    await upgrade_engine(engine)
    assert {await current_revision(engine)} == migration_heads()
