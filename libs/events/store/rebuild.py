"""Rebuild the read models from the log (DESIGN §4, §5 "Audit").

The whole log is refolded in memory with the same pure folds the store uses (batches of
positions, no per-event SQL), then compared with the live `trainings`, `training_epochs` and
`models` tables. With `swap=True` the live tables are replaced by the refold, under the append
lock so no event slips in between. `trainers` is liveness from heartbeats, not history, and is
not rebuilt.

Consistency: without swap, log and tables are read in one snapshot (REPEATABLE READ on Postgres;
one read transaction in SQLite's WAL), so a busy system still compares like with like.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.events import sql
from libs.events import tables as t
from libs.events.projection import Projection
from libs.events.rows import PG_FLAT_EVENTS, event_from_flat_json, select_events, stored_event
from libs.events.state import EpochRow, ModelRow, TrainingState, row_to
from libs.events.store import EventStore

BATCH = 20_000
_YIELD_EVERY = 256  # rows decoded between event-loop turns


@dataclass(frozen=True)
class Difference:
    table: str
    key: tuple[Any, ...]
    column: str | None  # None: the row exists on one side only
    live: Any
    rebuilt: Any

    def __str__(self) -> str:
        where = f"{self.table}{list(self.key)}"
        if self.column is None:
            side = (
                "only in the live table" if self.rebuilt is None else "missing from the live table"
            )
            return f"{where}: row {side}"
        return f"{where}.{self.column}: live={self.live!r} rebuilt={self.rebuilt!r}"


@dataclass
class RebuildReport:
    events: int = 0
    position: int = 0  # the log position the rebuild covers
    trainings: int = 0
    epochs: int = 0
    models: int = 0
    differences: list[Difference] = field(default_factory=list)
    differences_total: int = 0  # differences are listed up to a limit; this counts them all
    swapped: bool = False
    fold_seconds: float = 0.0  # reading + decoding + folding the log
    seconds: float = 0.0  # everything, comparison and swap included

    @property
    def equal(self) -> bool:
        return self.differences_total == 0

    @property
    def events_per_s(self) -> float:
        return self.events / self.fold_seconds if self.fold_seconds else 0.0


async def rebuild(
    engine: AsyncEngine,
    *,
    swap: bool = False,
    batch_size: int = BATCH,
    max_differences: int = 100,
) -> RebuildReport:
    """Refold the whole log and report whether it equals the live read models."""
    started = time.perf_counter()
    if swap:
        async with EventStore(engine).write_transaction() as conn:
            report = await _rebuild_on(conn, batch_size, max_differences)
            await _replace_live_tables(conn, report.projection)
            report.report.swapped = True
    else:
        async with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                report = await _rebuild_on(conn, batch_size, max_differences)
    report.report.seconds = time.perf_counter() - started
    return report.report


@dataclass
class _Outcome:
    report: RebuildReport
    projection: Projection


async def _rebuild_on(conn: AsyncConnection, batch_size: int, max_differences: int) -> _Outcome:
    report = RebuildReport()
    began = time.perf_counter()
    projection = await refold(conn, report, batch_size)
    report.fold_seconds = time.perf_counter() - began
    report.trainings = len(projection.trainings)
    report.epochs = len(projection.epochs)
    report.models = len(projection.models)
    differences = await compare(conn, projection)
    report.differences_total = len(differences)
    report.differences = differences[:max_differences]
    return _Outcome(report, projection)


async def refold(conn: AsyncConnection, report: RebuildReport, batch_size: int) -> Projection:
    """Fold the log in position batches. The next batch is fetched while this one is decoded
    and folded (Postgres renders JSON in its own process, so the two overlap on two cores);
    decoding yields to the event loop now and then so that fetch keeps draining the socket."""
    projection = Projection()
    fold = projection.apply
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        await conn.execute(sa.text("SET LOCAL TIME ZONE 'UTC'"))
    fetch = _fetch_flat if postgres else _fetch_rows
    pending: asyncio.Task[list[Any]] | None = asyncio.create_task(fetch(conn, 0, batch_size))
    while pending is not None:
        rows = await pending
        full = len(rows) == batch_size
        pending = asyncio.create_task(fetch(conn, rows[-1][0], batch_size)) if full else None
        for start in range(0, len(rows), _YIELD_EVERY):
            if postgres:
                for position, event_type, version, text in rows[start : start + _YIELD_EVERY]:
                    fold(position, event_from_flat_json(event_type, version, text))
            else:
                for row in rows[start : start + _YIELD_EVERY]:
                    stored = stored_event(row)
                    fold(stored.position, stored.event)
            await asyncio.sleep(0)
        if rows:
            report.events += len(rows)
            report.position = rows[-1][0]
    return projection


async def _fetch_flat(conn: AsyncConnection, after: int, limit: int) -> list[Any]:
    # Straight from asyncpg on the same connection (same transaction, same snapshot).
    raw = await conn.get_raw_connection()
    return await raw.driver_connection.fetch(PG_FLAT_EVENTS, after, limit)


async def _fetch_rows(conn: AsyncConnection, after: int, limit: int) -> list[Any]:
    query = select_events().where(t.events.c.global_position > after).limit(limit)
    return list((await conn.execute(query)).all())


async def compare(conn: AsyncConnection, rebuilt: Projection) -> list[Difference]:
    live_trainings = {
        r.training_id: TrainingState.from_row(r) for r in await conn.execute(sa.select(t.trainings))
    }
    live_epochs = {
        (r.training_id, r.attempt, r.epoch): row_to(EpochRow, r)
        for r in await conn.execute(sa.select(t.training_epochs))
    }
    live_models = {
        (r.strategy, r.timeframe, r.version): row_to(ModelRow, r)
        for r in await conn.execute(sa.select(t.models))
    }
    return [
        *_diff("trainings", live_trainings, rebuilt.trainings),
        *_diff("training_epochs", live_epochs, rebuilt.epochs),
        *_diff("models", live_models, rebuilt.models),
    ]


def _diff(table: str, live: dict[Any, Any], rebuilt: dict[Any, Any]) -> Iterable[Difference]:
    for key in sorted(live.keys() | rebuilt.keys(), key=repr):
        key_tuple = key if isinstance(key, tuple) else (key,)
        a, b = live.get(key), rebuilt.get(key)
        if a == b:
            continue
        if a is None or b is None:
            yield Difference(table, key_tuple, None, a, b)
            continue
        row_a, row_b = a.to_row(), b.to_row()
        for column in row_a:
            if row_a[column] != row_b[column]:
                yield Difference(table, key_tuple, column, row_a[column], row_b[column])


async def _replace_live_tables(conn: AsyncConnection, projection: Projection) -> None:
    for table in (t.models, t.training_epochs, t.trainings):
        await conn.execute(sa.delete(table))
    await sql.write_read_models(
        conn, projection.trainings.values(), projection.epochs.values(), projection.models.values()
    )
