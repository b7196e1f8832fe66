"""The log's head position in a row of its own (`log_head`): the append lock on Postgres, and what
lets one statement append and fold (libs/events/store/pg_append.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "log_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_head")),
    )
    op.execute(
        "INSERT INTO log_head (id, position) "
        "SELECT 1, coalesce(max(global_position), 0) FROM events"
    )


def downgrade() -> None:
    op.drop_table("log_head")
