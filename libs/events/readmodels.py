"""Queries over the read models (trainings, training_epochs, models, trainers)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import tables as t
from libs.events.state import STATUSES, EpochRow, ModelRow, TrainerRow, TrainingState, row_to

MAX_PAGE = 500


async def trainings_by_id(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, TrainingState]:
    if not ids:
        return {}
    rows = await conn.execute(sa.select(t.trainings).where(t.trainings.c.training_id.in_(ids)))
    return {row.training_id: TrainingState.from_row(row) for row in rows}


async def list_trainings(
    conn: AsyncConnection,
    *,
    tenant: str | None,
    status: str | Collection[str] | None,
    strategy: str | None,
    after_cursor: str | None,
    limit: int,
) -> tuple[list[TrainingState], str | None]:
    """Newest first (by the position of the stream's first event); keyset-paginated."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    query = sa.select(t.trainings).order_by(t.trainings.c.first_position.desc()).limit(limit + 1)
    if tenant is not None:
        query = query.where(t.trainings.c.tenant == tenant)
    if status is not None:
        query = query.where(t.trainings.c.status.in_(_statuses(status)))
    if strategy is not None:
        query = query.where(t.trainings.c.strategy == strategy)
    if after_cursor is not None:
        query = query.where(t.trainings.c.first_position < _parse_cursor(after_cursor))
    items = [TrainingState.from_row(row) for row in await conn.execute(query)]
    next_cursor = str(items[limit - 1].first_position) if len(items) > limit else None
    return items[:limit], next_cursor


async def list_epochs(
    conn: AsyncConnection, training_id: str, attempt: int | None
) -> list[EpochRow]:
    query = sa.select(t.training_epochs).where(t.training_epochs.c.training_id == training_id)
    if attempt is not None:
        query = query.where(t.training_epochs.c.attempt == attempt)
    query = query.order_by(t.training_epochs.c.attempt, t.training_epochs.c.epoch)
    return [row_to(EpochRow, row) for row in await conn.execute(query)]


async def list_models(
    conn: AsyncConnection,
    *,
    strategy: str | None,
    timeframe: str | None,
    tenant: str | None,
    limit: int,
) -> list[ModelRow]:
    """Grouped by strategy and timeframe, newest version first."""
    m = t.models.c
    query = sa.select(t.models).order_by(m.strategy, m.timeframe, m.version.desc()).limit(limit)
    if strategy is not None:
        query = query.where(m.strategy == strategy)
    if timeframe is not None:
        query = query.where(m.timeframe == timeframe)
    if tenant is not None:
        query = query.where(m.tenant == tenant)
    return [row_to(ModelRow, row) for row in await conn.execute(query)]


async def list_trainers(conn: AsyncConnection) -> list[TrainerRow]:
    query = sa.select(t.trainers).order_by(t.trainers.c.trainer_id)
    return [row_to(TrainerRow, row) for row in await conn.execute(query)]


def _statuses(status: str | Collection[str]) -> list[str]:
    wanted = [status] if isinstance(status, str) else list(status)
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise ValueError(f"status {unknown[0]!r} is not one of {', '.join(STATUSES)}")
    return wanted


def _parse_cursor(cursor: str) -> int:
    try:
        return int(cursor)
    except ValueError:
        raise ValueError(
            f"after_cursor {cursor!r} is not a cursor returned by a previous page"
        ) from None
