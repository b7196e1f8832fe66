"""An append on Postgres in two statements on one pooled connection, no explicit transaction.

1. read: the log's head, which of the events are stored already, and the current rows of the
   trainings they touch (one SELECT);
2. fold in Python, exactly as every append does (the same Projection), with the positions the
   events will get (head + 1, head + 2, ...);
3. write: one statement whose first part advances `log_head` only if it is still the head read
   in step 1 (`UPDATE ... WHERE position = head`: it waits for any append in flight and sees its
   commit), and whose every other part -- the events, each read model's upsert, the NOTIFYs --
   reads that part's RETURNING, so all happen or none. Postgres runs every data-modifying part
   of a WITH whether or not the outer query reads it, and a statement is its own transaction.

With the pool's pre-ping that is three round trips where the locked transaction takes eight
(BEGIN, lock, insert, select, an upsert per read model, notify, COMMIT). If another append
moved the head in between, nothing was written and the caller appends the locked way.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import catalog as ev
from libs.events import tables as t
from libs.events.db import json_dumps
from libs.events.readmodels import trainings
from libs.events.readmodels.projection import Projection
from libs.events.readmodels.registry import READ_MODELS
from libs.events.readmodels.unit import ReadModel
from libs.events.store import rules
from libs.events.store.port import AppendResult, StoredEvent
from libs.events.store.rows import aware, envelope_values

# Positions are given out from the head, not by the column's identity sequence; the sequence is
# moved along so that a row inserted without a position (a tool, a test) still gets a free one.
KEEP_IDENTITY_AHEAD = (
    "SELECT setval(pg_get_serial_sequence('events', 'global_position'), "
    "greatest(CAST({position} AS bigint), 1), CAST({position} AS bigint) > 0)"
)

# The head to append after: the head row, or a higher position some tool inserted directly.
HEAD = sa.func.greatest(
    t.log_head.c.position,
    sa.select(sa.func.coalesce(sa.func.max(t.events.c.global_position), 0)).scalar_subquery(),
)


def _read_query() -> sa.Select[Any]:
    ids = sa.bindparam("ids", type_=postgresql.ARRAY(sa.Uuid()))
    training_ids = sa.bindparam("training_ids", type_=postgresql.ARRAY(sa.String()))
    stored = (
        sa.select(sa.func.array_agg(t.events.c.event_id))
        .where(t.events.c.event_id == sa.any_(ids))
        .scalar_subquery()
    )
    row = trainings.trainings
    return (
        sa.select(
            t.log_head.c.position.label("head_row"),
            HEAD.label("head"),
            stored.label("stored_ids"),
            row,
        )
        .select_from(t.log_head.outerjoin(row, row.c.training_id == sa.any_(training_ids)))
        .where(t.log_head.c.id == 1)
    )


_READ = _read_query()


@functools.cache
def _write_statement() -> str:
    """One statement text whatever the append holds (each read model's rows may be empty), so
    asyncpg prepares it once."""
    parts = [
        "head AS (UPDATE log_head SET position = $1 WHERE id = 1 AND position = $2 "
        "RETURNING position AS head_position)",
        "new_events AS (INSERT INTO events (global_position, event_id, training_id, type, "
        "schema_version, tenant, source, attempt, seq, correlation_id, occurred_at, payload, "
        "recorded_at) "
        "SELECT $3 + n, e, tid, ty, sv, te, so, at, sq, co, oc, p::jsonb, $4 FROM head, "
        "unnest($5::uuid[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[], "
        "$11::int[], $12::bigint[], $13::text[], $14::timestamptz[], $15::text[]) "
        "WITH ORDINALITY AS u(e, tid, ty, sv, te, so, at, sq, co, oc, p, n) RETURNING 1)",
        "notified AS (SELECT pg_notify($16, note) FROM head, unnest($17::text[]) AS note)",
        f"identity AS ({KEEP_IDENTITY_AHEAD.format(position='$1')} FROM head)",
    ]
    for index, model in enumerate(READ_MODELS):
        parts.append(f"rows_{index} AS ({_upsert_sql(model, f'${18 + index}')})")
    return (
        "WITH "
        + ",\n".join(parts)
        + "\nSELECT (SELECT count(*) FROM head) AS won, (SELECT count(*) FROM notified), "
        "(SELECT count(*) FROM identity)"
    )


def _upsert_sql(model: ReadModel[Any], rows_param: str) -> str:
    table = model.table
    columns = [c.name for c in table.columns]
    keys = [c.name for c in table.primary_key.columns]
    names = ", ".join(f'"{c}"' for c in columns)
    sql = (
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM head, '
        f'jsonb_populate_recordset(NULL::"{table.name}", {rows_param}::jsonb) '
        f"ON CONFLICT ({', '.join(keys)}) "
    )
    if model.write_once:
        return sql + "DO NOTHING"
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in keys)
    sql += f"DO UPDATE SET {updates}"
    if model.newest_by is not None:
        sql += f' WHERE EXCLUDED."{model.newest_by}" >= "{table.name}"."{model.newest_by}"'
    return sql


async def append(
    conn: AsyncConnection,
    stream: Sequence[ev.Event],
    recorded: rules.Recorded,
    channel: str,
) -> tuple[AppendResult, list[Any]] | None:
    """(the result, its notifications), or None when another append moved the head first.
    `conn` must be in autocommit mode."""
    unique: dict[UUID, ev.Event] = {}
    duplicates: set[UUID] = set()
    for event in stream:
        if event.event_id in unique:
            duplicates.add(event.event_id)
        else:
            unique[event.event_id] = event
    training_ids = list(dict.fromkeys(e.training_id for e in unique.values() if e.training_id))
    rows = (await conn.execute(_READ, {"ids": list(unique), "training_ids": training_ids})).all()
    head_row, head, stored_ids = rows[0].head_row, rows[0].head, rows[0].stored_ids or []
    states = {
        row.training_id: trainings.TrainingState.from_row(row)
        for row in rows
        if row.training_id is not None
    }
    already = set(stored_ids)
    duplicates |= already
    new = [e for event_id, e in unique.items() if event_id not in already]
    folded = {e.training_id for e in new}
    states = {i: state for i, state in states.items() if i in folded}  # as the locked append

    recorded_at = datetime.now(UTC)
    appended = [StoredEvent(head + i, recorded_at, e) for i, e in enumerate(new, start=1)]
    projection = Projection(states)
    for position, _at, event in appended:
        projection.apply(position, event)
    by_model: dict[str, list[Any]] = {model.name: [] for model in READ_MODELS}
    for model in READ_MODELS:
        if model.rebuilt:
            by_model[model.name] += projection.rows(model).values()
    for model, model_rows in recorded:
        by_model[model.name] += model_rows
    notes = rules.notifications(appended)

    columns: list[list[Any]] = [[] for _ in range(11)]
    for event in new:
        aware(event.occurred_at)
        values = (*envelope_values(event), json_dumps(ev.payload_of(event)))
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    arguments = [
        head + len(new),
        head_row,
        head,
        recorded_at,
        *columns,
        channel,
        [note.to_json() for note in notes],
        *(json_dumps(_merged(model, by_model[model.name])) for model in READ_MODELS),
    ]
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    won, _notified, _identity = await driver.fetchrow(_write_statement(), *arguments)
    if not won:
        return None
    touched = rules.training_ids(appended)
    result = AppendResult(
        tuple(appended),
        frozenset(duplicates),
        {i: projection.trainings[i] for i in touched},
    )
    return result, notes


def _merged(model: ReadModel[Any], rows: list[Any]) -> list[dict[str, Any]]:
    latest: dict[Any, Any] = {}
    for row in rows:
        key = model.key(row)
        latest[key] = model.merge(latest.get(key), row)
    return [row.to_row() for row in latest.values()]
