"""The `training_epochs` read model: one row per (training, attempt, epoch), from the accepted
EpochCompleted events (a stale attempt's epochs are not recorded)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import catalog as ev
from libs.events.columns import ID, UTCDateTime, metadata
from libs.events.readmodels.trainings import TrainingState, finite
from libs.events.readmodels.unit import ReadModel

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


@dataclass(frozen=True, slots=True)
class EpochRow:
    training_id: str
    attempt: int
    epoch: int
    total_epochs: int
    # None where the trainer reported NaN/inf (see trainings.finite)
    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float | None
    duration_s: float | None
    best_epoch: int
    occurred_at: datetime
    position: int

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.training_id, self.attempt, self.epoch)

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _from_epoch(state: TrainingState, e: ev.EpochCompleted, position: int) -> EpochRow:
    return EpochRow(
        training_id=state.training_id,
        attempt=state.attempt,
        epoch=e.epoch,
        total_epochs=e.total_epochs,
        train_loss=finite(e.train_loss),
        train_accuracy=finite(e.train_accuracy),
        val_loss=finite(e.val_loss),
        val_accuracy=finite(e.val_accuracy),
        learning_rate=finite(e.learning_rate),
        duration_s=finite(e.duration_s),
        best_epoch=e.best_epoch,
        occurred_at=e.occurred_at,
        position=position,
    )


async def list_epochs(
    conn: AsyncConnection, training_id: str, attempt: int | None
) -> list[EpochRow]:
    query = sa.select(training_epochs).where(training_epochs.c.training_id == training_id)
    if attempt is not None:
        query = query.where(training_epochs.c.attempt == attempt)
    query = query.order_by(training_epochs.c.attempt, training_epochs.c.epoch)
    return [READ_MODEL.load(row) for row in await conn.execute(query)]


READ_MODEL = ReadModel(
    table=training_epochs,
    row_type=EpochRow,
    derive={ev.EpochCompleted.TYPE: _from_epoch},
)
