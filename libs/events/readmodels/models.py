"""The `models` read model: the registry of trained models, one row per (tenant, strategy,
timeframe, version), from the accepted Completed events. Each tenant has its own version
numbers (allocated in the artifact store, libs/pipeline/storage/bundle.py). A row carries the
model's artifact (key, uri, size, sha256) and lineage; a ModelDeleted marks it deleted (the row
stays as the audit of what existed; lists and lookups skip it). `latest` is not stored: it is
the tenant's newest version that is not deleted."""

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
    sa.Column("artifact", Json, nullable=True),
    sa.Column("lineage", Json, nullable=True),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Column("deleted_by", sa.String(200), nullable=True),
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
    artifact: dict[str, Any] | None = None  # {key, uri, size, sha256}; None: before artifacts
    lineage: dict[str, Any] | None = None
    deleted_at: datetime | None = None
    deleted_by: str | None = None

    @property
    def key(self) -> tuple[str, str, str, int]:
        """The primary key: (tenant, strategy, timeframe, version)."""
        return (self.tenant, self.strategy, self.timeframe, self.version)

    @property
    def name(self) -> str:
        """The version's name: `{timeframe}_v{N}`."""
        return f"{self.timeframe}_v{self.version}"

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


MODEL_REF_FIELDS = tuple(ev.ModelRef.model_fields)  # the columns a Completed's model fills


def _from_model(
    state: TrainingState, model: dict[str, Any], created_at: datetime, position: int
) -> ModelRow:
    fields: dict[str, Any] = {name: model.get(name) for name in MODEL_REF_FIELDS}
    return ModelRow(
        **fields,
        tenant=state.tenant,
        training_id=state.training_id,
        created_at=created_at,
        test_metrics=finite_values(state.test_metrics),
        position=position,
    )


def _from_completed(state: TrainingState, e: ev.Completed, position: int) -> ModelRow:
    return _from_model(state, e.model.model_dump(mode="json"), e.occurred_at, position)


def _from_deleted(state: TrainingState, e: ev.ModelDeleted, position: int) -> ModelRow | None:
    model = state.model
    if model is None or state.finished_at is None or model.get("version") != e.version:
        return None
    row = _from_model(state, model, state.finished_at, position)
    return dataclasses.replace(row, deleted_at=e.occurred_at, deleted_by=e.requested_by)


async def list_models(
    conn: AsyncConnection,
    *,
    strategy: str | None,
    timeframe: str | None,
    tenant: str | None,
    limit: int,
) -> list[ModelRow]:
    """Grouped by strategy and timeframe, newest version first; deleted versions left out."""
    m = models.c
    query = (
        sa.select(models)
        .where(m.deleted_at.is_(None))
        .order_by(m.strategy, m.timeframe, m.version.desc())
        .limit(limit)
    )
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
    derive={ev.Completed.TYPE: _from_completed, ev.ModelDeleted.TYPE: _from_deleted},
)
