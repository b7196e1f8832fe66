"""Initial schema: the event log, read models, relay cursor, idempotency keys
(docs/architecture.md §5).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here (not imported from libs.events.tables) so this revision never changes.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "global_position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            nullable=False,
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("training_id", sa.String(length=128), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=160), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("correlation_id", sa.String(length=160), nullable=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.PrimaryKeyConstraint("global_position", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_events_training_id_global_position"),
        "events",
        ["training_id", "global_position"],
    )

    op.create_table(
        "trainings",
        sa.Column("training_id", sa.String(length=128), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=200), nullable=True),
        sa.Column("symbols", JSON, nullable=True),
        sa.Column("timeframes", JSON, nullable=True),
        sa.Column("device_requested", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=True),
        sa.Column("phase_index", sa.Integer(), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("total_epochs", sa.Integer(), nullable=True),
        sa.Column("batch", sa.Integer(), nullable=True),
        sa.Column("total_batches", sa.Integer(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("eta_s", sa.Float(), nullable=True),
        sa.Column("latest_metrics", JSON, nullable=True),
        sa.Column("best_metrics", JSON, nullable=True),
        sa.Column("test_metrics", JSON, nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("trainer_id", sa.String(length=128), nullable=True),
        sa.Column("device", JSON, nullable=True),
        sa.Column("model", JSON, nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("requested_at", TS, nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("first_position", sa.BigInteger(), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("training_id", name=op.f("pk_trainings")),
    )
    op.create_index(
        op.f("ix_trainings_first_position"), "trainings", ["first_position"], unique=True
    )
    op.create_index(
        op.f("ix_trainings_status_first_position"), "trainings", ["status", "first_position"]
    )
    op.create_index(
        op.f("ix_trainings_tenant_first_position"), "trainings", ["tenant", "first_position"]
    )

    op.create_table(
        "training_epochs",
        sa.Column("training_id", sa.String(length=128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("total_epochs", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Float(), nullable=True),
        sa.Column("train_accuracy", sa.Float(), nullable=True),
        sa.Column("val_loss", sa.Float(), nullable=True),
        sa.Column("val_accuracy", sa.Float(), nullable=True),
        sa.Column("learning_rate", sa.Float(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("best_epoch", sa.Integer(), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["training_id"],
            ["trainings.training_id"],
            name=op.f("fk_training_epochs_training_id_trainings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "training_id", "attempt", "epoch", name=op.f("pk_training_epochs")
        ),
    )

    op.create_table(
        "models",
        sa.Column("strategy", sa.String(length=200), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("training_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("test_metrics", JSON, nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["training_id"],
            ["trainings.training_id"],
            name=op.f("fk_models_training_id_trainings"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("strategy", "timeframe", "version", name=op.f("pk_models")),
    )
    op.create_index(op.f("ix_models_training_id"), "models", ["training_id"])

    op.create_table(
        "trainers",
        sa.Column("trainer_id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("device", JSON, nullable=True),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("running", JSON, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.PrimaryKeyConstraint("trainer_id", name=op.f("pk_trainers")),
    )

    op.create_table(
        "relay_cursor",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_relay_cursor")),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("training_id", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "key", name=op.f("pk_idempotency_keys")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("relay_cursor")
    op.drop_table("trainers")
    op.drop_index(op.f("ix_models_training_id"), table_name="models")
    op.drop_table("models")
    op.drop_table("training_epochs")
    op.drop_index(op.f("ix_trainings_tenant_first_position"), table_name="trainings")
    op.drop_index(op.f("ix_trainings_status_first_position"), table_name="trainings")
    op.drop_index(op.f("ix_trainings_first_position"), table_name="trainings")
    op.drop_table("trainings")
    op.drop_index(op.f("ix_events_training_id_global_position"), table_name="events")
    op.drop_table("events")
