"""The `model_aliases` read model: which version each of a tenant's aliases names, one row per
(tenant, strategy, timeframe, alias), from ModelAliasSet / ModelAliasRemoved (a removed alias
keeps its row with `version` null: the audit trail is the log). `latest` is never stored: it is
always the newest version that is not deleted (readmodels/models.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from libs.events import catalog as ev
from libs.events.columns import ID, TENANT, UTCDateTime, metadata
from libs.events.readmodels.trainings import TrainingState
from libs.events.readmodels.unit import ReadModel

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("tenant", TENANT, nullable=False),
    sa.Column("strategy", sa.String(200), nullable=False),
    sa.Column("timeframe", sa.String(16), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer(), nullable=True),
    sa.Column(
        "training_id",
        ID,
        sa.ForeignKey("trainings.training_id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("set_at", UTCDateTime(), nullable=False),
    sa.Column("set_by", sa.String(200), nullable=True),
    sa.Column("position", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("tenant", "strategy", "timeframe", "alias"),
)


@dataclass(frozen=True, slots=True)
class AliasRow:
    tenant: str
    strategy: str
    timeframe: str
    alias: str
    version: int | None  # None: removed
    training_id: str | None
    set_at: datetime
    set_by: str | None
    position: int

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _set(state: TrainingState, e: ev.ModelAliasSet, position: int) -> AliasRow | None:
    if state.model is None or state.model.get("version") != e.version:
        return None  # not this training's model: the API never appends that
    return AliasRow(
        tenant=state.tenant,
        strategy=e.strategy,
        timeframe=e.timeframe,
        alias=e.alias,
        version=e.version,
        training_id=state.training_id,
        set_at=e.occurred_at,
        set_by=e.requested_by,
        position=position,
    )


def _removed(state: TrainingState, e: ev.ModelAliasRemoved, position: int) -> AliasRow:
    return AliasRow(
        tenant=state.tenant,
        strategy=e.strategy,
        timeframe=e.timeframe,
        alias=e.alias,
        version=None,
        training_id=None,
        set_at=e.occurred_at,
        set_by=e.requested_by,
        position=position,
    )


READ_MODEL = ReadModel(
    table=model_aliases,
    row_type=AliasRow,
    derive={ev.ModelAliasSet.TYPE: _set, ev.ModelAliasRemoved.TYPE: _removed},
)
