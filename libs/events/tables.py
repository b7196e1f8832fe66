"""The schema (DESIGN §4) as SQLAlchemy Core metadata. Alembic migrations must match it exactly
(tests/integration/events_store/test_migrations.py runs autogenerate's compare on both backends).

`events` is the append-only log; `trainings`, `training_epochs`, `models` are read models folded
from it (in the same transaction as the events); `trainers` is liveness from heartbeats (not
derived from the log — heartbeats are not stored, see store.py); `relay_cursor` is the outbox
position; `idempotency_keys` maps a tenant's Idempotency-Key to its training.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """TIMESTAMP WITH TIME ZONE that always hands back aware UTC datetimes.

    SQLite stores no offset, so values are normalised to UTC on the way in and tagged UTC on the
    way out; naive datetimes are refused rather than guessed at.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must carry a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on Postgres (indexable, compact), JSON text on SQLite.
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# BIGINT identity on Postgres; INTEGER PRIMARY KEY AUTOINCREMENT (a rowid alias) on SQLite.
Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

ID = sa.String(128)
TENANT = sa.String(64)

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

trainings = sa.Table(
    "trainings",
    metadata,
    sa.Column("training_id", ID, primary_key=True),
    sa.Column("tenant", TENANT, nullable=False),
    sa.Column("strategy", sa.String(200), nullable=True),
    sa.Column("symbols", Json, nullable=True),
    sa.Column("timeframes", Json, nullable=True),
    sa.Column("device_requested", sa.String(16), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("phase", sa.String(32), nullable=True),
    sa.Column("phase_index", sa.Integer(), nullable=True),
    sa.Column("epoch", sa.Integer(), nullable=True),
    sa.Column("total_epochs", sa.Integer(), nullable=True),
    sa.Column("batch", sa.Integer(), nullable=True),
    sa.Column("total_batches", sa.Integer(), nullable=True),
    sa.Column("progress", sa.Float(), nullable=True),
    sa.Column("eta_s", sa.Float(), nullable=True),
    sa.Column("latest_metrics", Json, nullable=True),
    sa.Column("best_metrics", Json, nullable=True),
    sa.Column("test_metrics", Json, nullable=True),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("trainer_id", sa.String(128), nullable=True),
    sa.Column("device", Json, nullable=True),
    sa.Column("model", Json, nullable=True),
    sa.Column("error", Json, nullable=True),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False),
    sa.Column("requested_at", UTCDateTime(), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # Position of the stream's first event: a stable, unique creation order for list cursors.
    sa.Column("first_position", sa.BigInteger(), nullable=False),
    sa.Column("last_position", sa.BigInteger(), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Index(None, "tenant", "first_position"),
    sa.Index(None, "status", "first_position"),
    sa.Index(None, "first_position", unique=True),
)

training_epochs = sa.Table(
    "training_epochs",
    metadata,
    sa.Column(
        "training_id",
        ID,
        sa.ForeignKey("trainings.training_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("attempt", sa.Integer(), primary_key=True),
    sa.Column("epoch", sa.Integer(), primary_key=True),
    sa.Column("total_epochs", sa.Integer(), nullable=False),
    sa.Column("train_loss", sa.Float(), nullable=True),
    sa.Column("train_accuracy", sa.Float(), nullable=True),
    sa.Column("val_loss", sa.Float(), nullable=True),
    sa.Column("val_accuracy", sa.Float(), nullable=True),
    sa.Column("learning_rate", sa.Float(), nullable=True),
    sa.Column("duration_s", sa.Float(), nullable=True),
    sa.Column("best_epoch", sa.Integer(), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("position", sa.BigInteger(), nullable=False),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("strategy", sa.String(200), primary_key=True),
    sa.Column("timeframe", sa.String(16), primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("bytes", sa.BigInteger(), nullable=False),
    sa.Column("tenant", TENANT, nullable=False),
    sa.Column(
        "training_id",
        ID,
        sa.ForeignKey("trainings.training_id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("test_metrics", Json, nullable=True),
    sa.Column("position", sa.BigInteger(), nullable=False),
    sa.Index(None, "training_id"),
)

trainers = sa.Table(
    "trainers",
    metadata,
    sa.Column("trainer_id", sa.String(128), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("device", Json, nullable=True),
    sa.Column("concurrency", sa.Integer(), nullable=False),
    sa.Column("running", Json, nullable=False),
    sa.Column("last_seen", UTCDateTime(), nullable=False),
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

# The read models a rebuild refolds from the log (trainers is liveness, not history).
FOLDED_TABLES = (trainings, training_epochs, models)
