"""Model versions per tenant: the `models` primary key gains `tenant`, since each tenant's models
live in its own folder with its own version numbers (docs/architecture.md §5).

Downgrading fails when two tenants hold the same (strategy, timeframe, version).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _primary_key(*columns: str) -> None:
    # Batch mode: SQLite rebuilds the table, Postgres alters it in place.
    with op.batch_alter_table("models") as batch:
        batch.drop_constraint("pk_models", type_="primary")
        batch.create_primary_key("pk_models", list(columns))


def upgrade() -> None:
    _primary_key("tenant", "strategy", "timeframe", "version")


def downgrade() -> None:
    _primary_key("strategy", "timeframe", "version")
