"""The `models` read model: the registry of trained models, one row per (tenant, strategy,
timeframe, version), from the accepted Completed events. Each tenant has its own model folders
and so its own version numbers; a version, once recorded, is never overwritten."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import catalog as ev
from libs.events.columns import ID, TENANT, Json, UTCDateTime, metadata
from libs.events.readmodels.trainings import TrainingState, finite_values
from libs.events.readmodels.unit import ReadModel

models = sa.Table(
    "models",
    metadata,
    sa.Column("strategy", sa.String(200), nullable=False),
    sa.Column("timeframe", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
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
    sa.PrimaryKeyConstraint("tenant", "strategy", "timeframe", "version"),
    sa.Index(None, "training_id"),
)


@dataclass(frozen=True, slots=True)
class ModelRow:
    strategy: str
    timeframe: str
    version: int
    path: str
    sha256: str
    bytes: int
    tenant: str
    training_id: str | None
    created_at: datetime
    test_metrics: dict[str, Any] | None
    position: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        """The primary key: (tenant, strategy, timeframe, version)."""
        return (self.tenant, self.strategy, self.timeframe, self.version)

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _from_completed(state: TrainingState, e: ev.Completed, position: int) -> ModelRow:
    return ModelRow(
        **e.model.model_dump(mode="json"),
        tenant=state.tenant,
        training_id=state.training_id,
        created_at=e.occurred_at,
        test_metrics=finite_values(e.test_metrics),
        position=position,
    )


async def list_models(
    conn: AsyncConnection,
    *,
    strategy: str | None,
    timeframe: str | None,
    tenant: str | None,
    limit: int,
) -> list[ModelRow]:
    """Grouped by strategy and timeframe, newest version first."""
    m = models.c
    query = sa.select(models).order_by(m.strategy, m.timeframe, m.version.desc()).limit(limit)
    if strategy is not None:
        query = query.where(m.strategy == strategy)
    if timeframe is not None:
        query = query.where(m.timeframe == timeframe)
    if tenant is not None:
        query = query.where(m.tenant == tenant)
    return [READ_MODEL.load(row) for row in await conn.execute(query)]


READ_MODEL = ReadModel(
    table=models,
    row_type=ModelRow,
    derive={ev.Completed.TYPE: _from_completed},
    write_once=True,
)
