"""Run the Alembic migrations (migrations/) from code: the CLI, `ktrdr up` and tests use this;
and tell whether a database's schema is at the code's head (`schema_status`): the projector and
`ktrdr up` refuse to start otherwise, and the API's /readyz reports it.

alembic.ini and migrations/ live at the repository root, beside `libs/`; they are located from
this file, so `ktrdr db upgrade` works from any working directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = ROOT / "alembic.ini"
MIGRATIONS = ROOT / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """Alembic's Config for our migrations; `url` overrides KTRDR_DATABASE_URL."""
    if not ALEMBIC_INI.is_file() or not MIGRATIONS.is_dir():
        raise FileNotFoundError(
            f"migrations not found at {MIGRATIONS} (alembic.ini at {ALEMBIC_INI}); "
            "run from a source checkout or an editable install"
        )
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # ConfigParser interpolation: a literal % in a password must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head", *, keep_logging: bool = False) -> None:
    """Migrate the database at `url` (sync; runs its own event loop). `keep_logging`: the
    caller set up logging already, so Alembic's lines go through it (once) rather than through
    alembic.ini's own console handler."""
    config = alembic_config(url)
    if keep_logging:
        config.attributes["configure_logging"] = False
    command.upgrade(config, revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> None:
    """Print the current revision (Alembic writes to stdout)."""
    command.current(alembic_config(url), verbose=False)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate through an existing engine (inside a running event loop; keeps its settings,
    e.g. a test's search_path)."""
    await _on_connection(engine, lambda config: command.upgrade(config, revision))


async def downgrade_engine(engine: AsyncEngine, revision: str) -> None:
    await _on_connection(engine, lambda config: command.downgrade(config, revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


@dataclass(frozen=True)
class SchemaStatus:
    """The revision(s) a database is at, and the head(s) of the migrations shipped with the code."""

    current: frozenset[str]
    heads: frozenset[str]

    @property
    def at_head(self) -> bool:
        return self.current == self.heads

    def __str__(self) -> str:
        heads = ", ".join(sorted(self.heads))
        if self.at_head:
            return f"at head ({heads})"
        current = ", ".join(sorted(self.current)) or "nothing"
        return f"database at {current}, code expects {heads}: run `ktrdr db upgrade`"


@lru_cache(maxsize=1)
def migration_heads() -> frozenset[str]:
    """The head revision(s) of the Alembic scripts shipped with the code."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def schema_status(engine: AsyncEngine) -> SchemaStatus:
    """Where the database's schema is against the code's heads. A database never migrated (no
    alembic_version table) is at nothing; an unreachable one raises."""
    # A plain query rather than Alembic's MigrationContext, which logs on every call (/readyz).
    async with engine.connect() as conn:
        try:
            rows = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
        except sa.exc.DBAPIError:
            rows = []
    return SchemaStatus(frozenset(row[0] for row in rows), migration_heads())


async def _on_connection(engine: AsyncEngine, run: Callable[[Config], Any]) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_with_connection, run)


def _with_connection(connection: Connection, run: Callable[[Config], Any]) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    config.attributes["configure_logging"] = False
    run(config)
