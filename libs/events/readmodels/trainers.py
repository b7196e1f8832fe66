"""The `trainers` read model: which trainers are alive, from their TrainerHeartbeat events.

EPHEMERAL: heartbeats are liveness, not history — thousands a day per trainer would drown the
log and every replay — so the store does not keep them in `events` and upserts this table
directly. It cannot be rebuilt from the log, and rebuild leaves it alone; a trainer's next
heartbeat (every few seconds) restores its row. A heartbeat delivered late never replaces a
newer one (`newest_by`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.events import catalog as ev
from libs.events.columns import Json, UTCDateTime, metadata
from libs.events.readmodels.unit import ReadModel

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


@dataclass(frozen=True, slots=True)
class TrainerRow:
    trainer_id: str
    host: str
    device: dict[str, Any] | None
    concurrency: int
    running: list[str]
    last_seen: datetime

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _from_heartbeat(event: ev.TrainerHeartbeat) -> TrainerRow:
    return TrainerRow(
        trainer_id=event.trainer_id,
        host=event.host,
        device=event.device.model_dump(mode="json"),
        concurrency=event.concurrency,
        running=list(event.running),
        last_seen=event.occurred_at,
    )


async def list_trainers(conn: AsyncConnection) -> list[TrainerRow]:
    query = sa.select(trainers).order_by(trainers.c.trainer_id)
    return [READ_MODEL.load(row) for row in await conn.execute(query)]


READ_MODEL = ReadModel(
    table=trainers,
    row_type=TrainerRow,
    record={ev.TrainerHeartbeat.TYPE: _from_heartbeat},
    newest_by="last_seen",
    ephemeral="liveness from heartbeats, which the log does not keep",
)
