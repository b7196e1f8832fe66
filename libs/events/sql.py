"""Small dialect-aware SQL helpers shared by the store and rebuild (Postgres and SQLite)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import tables as t
from libs.events.state import EpochRow, ModelRow, TrainerRow, TrainingState

# Bound parameters per statement stay well under SQLite's 32766 and asyncpg's 32767 limits.
_MAX_PARAMS = 30_000


async def upsert(
    conn: AsyncConnection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    update: bool = True,
) -> None:
    """INSERT rows; on a primary-key conflict overwrite every other column (or do nothing)."""
    if not rows:
        return
    stmt = _upsert_statement(conn.dialect.name, table, update)
    for chunk in _chunks(rows, max(1, _MAX_PARAMS // len(table.columns))):
        await conn.execute(stmt, list(chunk))


@functools.cache
def _upsert_statement(dialect: str, table: sa.Table, update: bool) -> Any:
    # Built once: `excluded` makes a fresh alias of every column each time it is touched, which
    # cost more CPU than the rest of a small append put together.
    keys = [c.name for c in table.primary_key.columns]
    stmt = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
    )


async def write_read_models(
    conn: AsyncConnection,
    trainings: Iterable[TrainingState],
    epochs: Iterable[EpochRow],
    models: Iterable[ModelRow],
) -> None:
    """Upsert folded rows. A model version, once recorded, is never overwritten."""
    await upsert(conn, t.trainings, [s.to_row() for s in trainings])
    await upsert(conn, t.training_epochs, [e.to_row() for e in epochs])
    await upsert(conn, t.models, [m.to_row() for m in models], update=False)


async def write_trainers(conn: AsyncConnection, rows: Iterable[TrainerRow]) -> None:
    """Upsert heartbeats; an older heartbeat arriving late never overwrites a newer one."""
    latest: dict[str, TrainerRow] = {}
    for row in rows:
        if row.trainer_id not in latest or row.last_seen >= latest[row.trainer_id].last_seen:
            latest[row.trainer_id] = row
    if not latest:
        return
    stmt = _trainers_upsert(conn.dialect.name)
    await conn.execute(stmt, [r.to_row() for r in latest.values()])


@functools.cache
def _trainers_upsert(dialect: str) -> Any:
    stmt = postgresql.insert(t.trainers) if dialect == "postgresql" else sqlite.insert(t.trainers)
    return stmt.on_conflict_do_update(
        index_elements=["trainer_id"],
        set_={c.name: stmt.excluded[c.name] for c in t.trainers.columns if c.name != "trainer_id"},
        where=stmt.excluded.last_seen >= t.trainers.c.last_seen,
    )


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
