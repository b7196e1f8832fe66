"""Events <-> `events` table rows. Reading is the hot path of tailing and rebuilds, so rows are
selected as plain tuples in a fixed column order and current-version events skip the upcaster."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pydantic_core
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import catalog as ev
from libs.events import tables as t
from libs.events.codec import from_dict
from libs.events.db import json_dumps
from libs.events.store.port import StoredEvent

ENVELOPE_COLUMNS = (
    "event_id",
    "training_id",
    "type",
    "schema_version",
    "tenant",
    "source",
    "attempt",
    "seq",
    "correlation_id",
    "occurred_at",
)
# An event's envelope values in ENVELOPE_COLUMNS order, as a tuple (one C call per event).
envelope_values = operator.attrgetter(*ENVELOPE_COLUMNS)
_READ_COLUMNS = [t.events.c[name] for name in ("global_position", "recorded_at", "payload")]
_READ_COLUMNS += [t.events.c[name] for name in ENVELOPE_COLUMNS]


def select_events() -> sa.Select[Any]:
    """SELECT of the columns `stored_event` expects, in position order."""
    return sa.select(*_READ_COLUMNS).order_by(t.events.c.global_position)


def stored_event(row: Any) -> StoredEvent:
    """A StoredEvent from a `select_events()` row (older schema versions are upcast)."""
    position, recorded_at, payload, *envelope = row
    raw = dict(payload)
    raw.update(zip(ENVELOPE_COLUMNS, envelope, strict=True))
    cls = ev.REGISTRY.get(raw["type"])
    if cls is not None and raw["schema_version"] == cls.SCHEMA_VERSION:
        event = cls.model_validate(raw)
    else:
        event = from_dict(raw)  # upcasts, or names the unknown type
    return StoredEvent(position, recorded_at, event)


# Postgres renders each event as its flat JSON (envelope + payload) in the query, so the client
# does one Rust parse-and-validate per event (`model_validate_json`) instead of decoding columns,
# JSONB and building dicts: the rebuild's hot path. Run with TIME ZONE 'UTC' for +00:00 stamps.
PG_FLAT_EVENTS = """
SELECT global_position, type, schema_version,
  '{"event_id":"' || event_id || '","training_id":' || coalesce(to_json(training_id)::text, 'null')
  || ',"type":' || to_json(type)::text || ',"schema_version":' || schema_version
  || ',"tenant":' || to_json(tenant)::text || ',"source":' || to_json(source)::text
  || ',"attempt":' || attempt || ',"seq":' || seq
  || ',"correlation_id":' || coalesce(to_json(correlation_id)::text, 'null')
  || ',"occurred_at":' || to_json(occurred_at)::text
  || CASE WHEN payload = '{}'::jsonb THEN '}' ELSE ',' || substr(payload::text, 2) END
FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2
"""


def event_from_flat_json(event_type: str, schema_version: int, text: str) -> ev.Event:
    cls = ev.REGISTRY.get(event_type)
    if cls is not None and schema_version == cls.SCHEMA_VERSION:
        return cls.model_validate_json(text)
    return from_dict(pydantic_core.from_json(text))  # upcasts, or names the unknown type


def event_row(event: ev.Event, recorded_at: datetime) -> dict[str, Any]:
    row = dict(zip(ENVELOPE_COLUMNS, envelope_values(event), strict=True))
    row["recorded_at"] = recorded_at
    row["payload"] = ev.payload_of(event)
    return row


async def insert_new(
    conn: AsyncConnection, events: Sequence[ev.Event], after: int = 0
) -> tuple[list[StoredEvent], set[UUID]]:
    """Insert the events not stored yet: (the new ones in position order, the event_ids skipped
    as already stored or repeated within `events`). One recorded_at for the whole call. On
    Postgres the positions follow `after`, the log's head (see SqlEventStore.write_transaction);
    SQLite assigns them itself."""
    unique: dict[UUID, ev.Event] = {}
    duplicates: set[UUID] = set()
    for event in events:
        if event.event_id in unique:
            duplicates.add(event.event_id)  # repeated within this very call
        else:
            unique[event.event_id] = event
    if not unique:
        return [], duplicates
    recorded_at = datetime.now(UTC)
    positions = await insert_events(conn, list(unique.values()), recorded_at, after)
    duplicates |= set(unique) - set(positions)
    stored = [
        StoredEvent(positions[event_id], recorded_at, event)
        for event_id, event in unique.items()
        if event_id in positions
    ]
    stored.sort(key=lambda s: s.position)
    return stored, duplicates


async def insert_events(
    conn: AsyncConnection, events: Sequence[ev.Event], recorded_at: datetime, after: int = 0
) -> dict[UUID, int]:
    """INSERT ... ON CONFLICT (event_id) DO NOTHING; the positions of the rows actually inserted.

    Positions follow the order of `events` (on Postgres: after + 1, after + 2, ..., a skipped
    duplicate leaving its number unused). Postgres gets one statement whatever the batch size
    (arrays through unnest: one prepared statement, planned once, instead of a multi-VALUES
    statement with thousands of parameters per batch size).
    """
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg's connection: one statement for the batch
        records = await driver.fetch(_PG_INSERT, *_pg_columns(events, recorded_at), after)
        return {event_id: position for position, event_id in records}
    result = await conn.execute(_SQLITE_INSERT, [event_row(e, recorded_at) for e in events])
    return {event_id: position for position, event_id in result.all()}


_SQLITE_INSERT = (
    sqlite.insert(t.events)
    .on_conflict_do_nothing(index_elements=["event_id"])
    .returning(t.events.c.global_position, t.events.c.event_id)
)

_PG_INSERT = """
INSERT INTO events (global_position, event_id, training_id, type, schema_version, tenant,
                    source, attempt, seq, correlation_id, occurred_at, payload, recorded_at)
SELECT $13::bigint + n, e, tid, ty, sv, te, so, at, sq, co, oc, p::jsonb, $12
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::int[],
            $8::bigint[], $9::text[], $10::timestamptz[], $11::text[])
     WITH ORDINALITY AS u(e, tid, ty, sv, te, so, at, sq, co, oc, p, n)
ORDER BY n
ON CONFLICT (event_id) DO NOTHING
RETURNING global_position, event_id
"""


def _pg_columns(events: Sequence[ev.Event], recorded_at: datetime) -> list[Any]:
    columns: list[list[Any]] = [[] for _ in range(11)]
    for e in events:
        aware(e.occurred_at)
        values = (*envelope_values(e), json_dumps(ev.payload_of(e)))
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return [*columns, aware(recorded_at)]


def aware(value: datetime) -> datetime:
    """`value`, refused when naive."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: timestamps must carry a timezone")
    return value
