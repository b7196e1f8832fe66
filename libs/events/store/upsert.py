"""Writing read-model rows with dialect-aware upserts (Postgres and SQLite), by each registered
read model's rules (see readmodels/unit.py): overwrite, write once, or newest wins."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events.readmodels.projection import Projection
from libs.events.readmodels.registry import REBUILT
from libs.events.readmodels.unit import ReadModel

# Bound parameters per statement stay well under SQLite's 32766 and asyncpg's 32767 limits.
_MAX_PARAMS = 30_000


async def upsert(
    conn: AsyncConnection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    update: bool = True,
    newest_by: str | None = None,
) -> None:
    """INSERT rows; on a primary-key conflict overwrite every other column (only with a
    `newest_by` value at least the stored one, if given), or do nothing (`update=False`)."""
    if not rows:
        return
    stmt = _upsert_statement(conn.dialect.name, table, update, newest_by)
    for chunk in _chunks(rows, max(1, _MAX_PARAMS // len(table.columns))):
        await conn.execute(stmt, list(chunk))


@functools.cache
def _upsert_statement(dialect: str, table: sa.Table, update: bool, newest_by: str | None) -> Any:
    # Built once: `excluded` makes a fresh alias of every column each time it is touched, which
    # cost more CPU than the rest of a small append put together.
    keys = [c.name for c in table.primary_key.columns]
    stmt = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
        where=None if newest_by is None else stmt.excluded[newest_by] >= table.c[newest_by],
    )


async def write_rows(conn: AsyncConnection, model: ReadModel[Any], rows: Iterable[Any]) -> None:
    """Upsert one read model's rows by its rules; within `rows` the model's merge applies too
    (e.g. the newest of two heartbeats of one trainer)."""
    latest: dict[Any, Any] = {}
    for row in rows:
        key = model.key(row)
        latest[key] = model.merge(latest.get(key), row)
    await upsert(
        conn,
        model.table,
        [row.to_row() for row in latest.values()],
        update=not model.write_once,
        newest_by=model.newest_by,
    )


async def write_projection(conn: AsyncConnection, projection: Projection) -> None:
    """Upsert every rebuilt read model's rows of `projection`, in registry order."""
    for model in REBUILT:
        await write_rows(conn, model, projection.rows(model).values())


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
