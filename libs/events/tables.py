"""The database schema (architecture.md §5) as SQLAlchemy Core metadata. Alembic migrations
must match it exactly (tests/integration/events_store/test_migrations.py runs autogenerate's
compare on both backends).

This module declares the tables that are not read models: `events` (the append-only log),
`log_head` (its head position, the append lock on Postgres), `relay_cursor` (the outbox
positions), `idempotency_keys` (a tenant's Idempotency-Key -> its training) and `api_keys`
(hashed API keys; libs/events/store/apikeys.py says why they are not events). Every read model
declares its table in its own module (libs/events/readmodels/); importing this module imports
the registry too, so `metadata` here always holds the whole schema.
"""

from __future__ import annotations

import sqlalchemy as sa

from libs.events.columns import ID, TENANT, Json, Position, UTCDateTime, metadata
from libs.events.readmodels.registry import READ_MODELS

__all__ = [
    "LOG_TABLES",
    "api_keys",
    "READ_MODEL_TABLES",
    "events",
    "idempotency_keys",
    "log_head",
    "metadata",
    "relay_cursor",
]

events = sa.Table(
    "events",
    metadata,
    sa.Column("global_position", Position, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
    sa.Column("training_id", ID, nullable=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("schema_version", sa.Integer(), nullable=False),
    sa.Column("tenant", TENANT, nullable=False),
    sa.Column("source", sa.String(160), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("correlation_id", sa.String(160), nullable=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Index(None, "training_id", "global_position"),
    sqlite_autoincrement=True,  # never reuse a position, even after the last row is deleted
)

# The log's head on Postgres: the highest position given out, in one row. Every append locks and
# advances it (libs/events/store/sql.py), so appends are serialised on it and positions follow
# commit order; a one-statement append takes its positions from it and writes only if it is
# still the head it read (libs/events/store/pg_append.py). SQLite serialises on its write lock
# and leaves this row alone.
log_head = sa.Table(
    "log_head",
    metadata,
    sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
    sa.Column("position", sa.BigInteger(), nullable=False),
)

relay_cursor = sa.Table(
    "relay_cursor",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger(), nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("tenant", TENANT, primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("training_id", ID, nullable=False),
    sa.Column("request_hash", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("tenant", TENANT, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_hash", sa.String(256), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
)

# The tables that are not read models (tests/unit/events_store/test_schema.py fails on a table
# that is neither one of these nor a registered read model's).
LOG_TABLES = (events, log_head, relay_cursor, idempotency_keys, api_keys)
READ_MODEL_TABLES = tuple(model.table for model in READ_MODELS)
