"""What only the SQL store can show, on SQLite and on the real Postgres: rows written by hand
in an old schema version, and a failing read-model write inside the append transaction."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from asyncpg.exceptions import IntegrityConstraintViolationError
from sqlalchemy.exc import IntegrityError

from libs.events import tables as t
from libs.events.catalog import BatchProgress
from libs.events.store import pg_append
from libs.events.store import sql as sql_store
from tests.support.events import TrainingScript


async def test_a_failing_read_model_write_rolls_back_the_events(store, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("read model write failed")

    def invalid_rows(model, rows):  # the database refuses them: a NOT NULL column left empty
        return [{**row, "tenant": None} for row in merged(model, rows)]

    monkeypatch.setattr(sql_store, "write_projection", broken)  # the locked transaction
    merged = pg_append._merged
    monkeypatch.setattr(pg_append, "_merged", invalid_rows)  # Postgres: the one-statement append
    s = TrainingScript("t-1")
    with pytest.raises((RuntimeError, IntegrityConstraintViolationError, IntegrityError)):
        await store.append([s.requested()])
    assert await store.max_position() == 0
    assert await store.get_training("t-1") is None


async def test_old_schema_versions_are_upcast_on_read(store, engine):
    event_id = uuid.uuid4()
    s = TrainingScript("t-1")
    await store.append([s.requested()])
    v1 = {"epoch": 1, "total_epochs": 2, "batch": 3, "total_batches": 4, "loss": 0.5}
    v1 |= {"accuracy": 0.6, "samples_per_s": 10.0, "percent": 25.0}
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(t.events).values(
                event_id=event_id,
                training_id="t-1",
                type="BatchProgress",
                schema_version=1,
                tenant="default",
                source="trainer:t1",
                attempt=1,
                seq=1,
                correlation_id=None,
                occurred_at=s.clock,
                recorded_at=s.clock,
                payload=v1,
            )
        )
    stored = (await store.read_stream("t-1"))[-1].event
    assert isinstance(stored, BatchProgress)
    assert stored.schema_version == BatchProgress.SCHEMA_VERSION
    assert (stored.running_loss, stored.progress) == (0.5, 0.25)
