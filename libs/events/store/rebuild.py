"""Rebuild the read models from the log (architecture.md §5, §6 "Audit").

The whole log is refolded in memory with the same pure folds the store uses (batches of
positions, no per-event SQL), then compared with the live table of every read model the
registry rebuilds (all but the ephemeral ones, e.g. `trainers`). With `swap=True` those live
tables are replaced by the refold, under the append lock so no event slips in between.

Consistency: without swap, log and tables are read in one snapshot (REPEATABLE READ on Postgres;
one read transaction in SQLite's WAL), so a busy system still compares like with like.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import tables as t
from libs.events.readmodels.projection import Projection
from libs.events.readmodels.registry import REBUILT
from libs.events.store.rows import (
    PG_FLAT_EVENTS,
    event_from_flat_json,
    select_events,
    stored_event,
)
from libs.events.store.sql import SqlEventStore
from libs.events.store.upsert import write_projection

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
    rows: dict[str, int] = field(default_factory=dict)  # rebuilt rows per read-model table
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
    store: SqlEventStore,
    *,
    swap: bool = False,
    batch_size: int = BATCH,
    max_differences: int = 100,
) -> RebuildReport:
    """Refold the whole log of `store` and report whether it equals the live read models."""
    started = time.perf_counter()
    if swap:
        async with store.write_transaction() as conn:
            report = await _rebuild_on(conn, batch_size, max_differences)
            await _replace_live_tables(conn, report.projection)
            report.report.swapped = True
    else:
        async with store.read_snapshot() as conn:
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
    report.rows = {model.name: len(projection.rows(model)) for model in REBUILT}
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
    driver: Any = raw.driver_connection
    rows: list[Any] = await driver.fetch(PG_FLAT_EVENTS, after, limit)
    return rows


async def _fetch_rows(conn: AsyncConnection, after: int, limit: int) -> list[Any]:
    query = select_events().where(t.events.c.global_position > after).limit(limit)
    return list((await conn.execute(query)).all())


async def compare(conn: AsyncConnection, rebuilt: Projection) -> list[Difference]:
    """Every difference between the live tables of the rebuilt read models and `rebuilt`."""
    differences: list[Difference] = []
    for model in REBUILT:
        live = {}
        for row in await conn.execute(sa.select(model.table)):
            loaded = model.load(row)
            live[model.key(loaded)] = loaded
        differences += _diff(model.name, live, rebuilt.rows(model))
    return differences


def _diff(table: str, live: Mapping[Any, Any], rebuilt: Mapping[Any, Any]) -> Iterable[Difference]:
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
    for model in reversed(REBUILT):  # referencing tables first
        await conn.execute(sa.delete(model.table))
    await write_projection(conn, projection)
