"""Models that travel: each model row gains its artifact (key, uri, size, sha256), its lineage
and its deletion (an admin's ModelDeleted), and `model_aliases` records which version each of a
tenant's aliases names (docs/architecture.md §5).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here (not imported from libs.events) so this revision never changes.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("artifact", JSON, nullable=True))
        batch.add_column(sa.Column("lineage", JSON, nullable=True))
        batch.add_column(sa.Column("deleted_at", TS, nullable=True))
        batch.add_column(sa.Column("deleted_by", sa.String(200), nullable=True))
    op.create_table(
        "model_aliases",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(200), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("training_id", sa.String(length=128), nullable=True),
        sa.Column("set_at", TS, nullable=False),
        sa.Column("set_by", sa.String(200), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["training_id"],
            ["trainings.training_id"],
            name=op.f("fk_model_aliases_training_id_trainings"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint(
            "tenant", "strategy", "timeframe", "alias", name=op.f("pk_model_aliases")
        ),
    )


def downgrade() -> None:
    op.drop_table("model_aliases")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("deleted_by")
        batch.drop_column("deleted_at")
        batch.drop_column("lineage")
        batch.drop_column("artifact")
