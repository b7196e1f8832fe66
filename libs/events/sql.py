"""Small dialect-aware SQL helpers shared by the store and rebuild (Postgres and SQLite)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import tables as t
from libs.events.state import EpochRow, ModelRow, TrainerRow, TrainingState

# Bound parameters per statement stay well under SQLite's 32766 and asyncpg's 32767 limits.
_MAX_PARAMS = 30_000


def insert_for(conn: AsyncConnection, table: sa.Table) -> Any:
    """The dialect's INSERT (both support ON CONFLICT)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


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
    keys = [c.name for c in table.primary_key.columns]
    for chunk in _chunks(rows, max(1, _MAX_PARAMS // len(table.columns))):
        stmt = insert_for(conn, table)
        if update:
            stmt = stmt.on_conflict_do_update(
                index_elements=keys,
                set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=keys)
        await conn.execute(stmt, list(chunk))


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
    stmt = insert_for(conn, t.trainers)
    stmt = stmt.on_conflict_do_update(
        index_elements=["trainer_id"],
        set_={c.name: stmt.excluded[c.name] for c in t.trainers.columns if c.name != "trainer_id"},
        where=stmt.excluded.last_seen >= t.trainers.c.last_seen,
    )
    await conn.execute(stmt, [r.to_row() for r in latest.values()])


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
