"""The event store: append-only log + read models folded in the same transaction (DESIGN §4).

Appends are serialised so global_position is assigned in commit order (a reader that has seen
position N never later finds a smaller one): Postgres takes `pg_advisory_xact_lock(APPEND_LOCK)`
first thing in the transaction; SQLite uses `BEGIN IMMEDIATE` (the database's single write lock)
plus a per-engine asyncio lock so this process's writers queue without busy-waiting.

Decisions worth knowing:
- Duplicates (same event_id, already stored or repeated within the call) are skipped —
  `INSERT ... ON CONFLICT (event_id) DO NOTHING` — and are not folded again.
- TrainerHeartbeat is NOT stored in `events`: it is liveness, not history (thousands a day per
  trainer would drown the log and every replay). `append` upserts it into `trainers` only, so
  `trainers` is the one read model a rebuild does not derive.
- Notifications: one per training touched by an append (its highest new position and that
  event's type) — a wake-up hint, see notify.py. Postgres: pg_notify inside the transaction
  (delivered at commit, to every process). Either backend: `notifier.publish()` after commit.
- read_all's `sources` filter: exact source names, or a prefix ending in "*" (e.g. "trainer:*").
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.events import catalog as ev
from libs.events import idempotency as idempotency_keys
from libs.events import readmodels, sql
from libs.events import tables as t
from libs.events.db import SQLITE_BEGIN_IMMEDIATE
from libs.events.folds import fold_stream, trainer_row
from libs.events.idempotency import IdempotencyClaim, IdempotencyConflict, IdempotencyRecord
from libs.events.notify import DEFAULT_CHANNEL, Notification, Notifier
from libs.events.projection import Projection
from libs.events.rows import StoredEvent, insert_new, select_events, stored_event
from libs.events.state import EpochRow, ModelRow, TrainerRow, TrainingState

__all__ = [
    "APPEND_LOCK",
    "AppendResult",
    "EventStore",
    "IdempotencyClaim",
    "IdempotencyConflict",
    "IdempotencyRecord",
    "StoredEvent",
]

APPEND_LOCK = 0x6B74_7264_7231  # "ktrdr1": the transaction-level advisory lock of appends

_sqlite_writer_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class AppendResult:
    appended: tuple[StoredEvent, ...] = ()  # the new events, in position order
    duplicates: frozenset[UUID] = frozenset()  # event_ids already stored (or repeated)
    states: dict[str, TrainingState] = field(default_factory=dict)  # after the fold
    # Set when an idempotency claim matched an earlier request: nothing was appended and this
    # is that request's training (its current state is in `states`).
    replayed_training_id: str | None = None

    @property
    def positions(self) -> tuple[int, ...]:
        return tuple(stored.position for stored in self.appended)

    @property
    def last_position(self) -> int | None:
        return self.appended[-1].position if self.appended else None


class EventStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        notifier: Notifier | None = None,
        channel: str = DEFAULT_CHANNEL,
    ) -> None:
        self.engine = engine
        self.notifier = notifier
        self.channel = channel
        self._postgres = engine.dialect.name == "postgresql"

    # --- writing ---------------------------------------------------------------------------

    async def append(
        self,
        events: Sequence[ev.Event],
        *,
        fold: bool = True,
        idempotency: IdempotencyClaim | tuple[str, str, str] | None = None,
    ) -> AppendResult:
        """Store the new events and fold them into the read models, in one transaction."""
        claim = IdempotencyClaim(*idempotency) if isinstance(idempotency, tuple) else idempotency
        heartbeats, stream = _split(events)
        requested_id = idempotency_keys.claimed_training(stream) if claim else ""
        async with self.write_transaction() as conn:
            if claim:
                replay = await idempotency_keys.earlier_training(conn, claim)
                if replay is not None:
                    states = await readmodels.trainings_by_id(conn, [replay])
                    return AppendResult(states=states, replayed_training_id=replay)
            appended, duplicates = await insert_new(conn, stream)
            states = await self._fold(conn, appended) if fold else {}
            if heartbeats:
                await sql.write_trainers(conn, [trainer_row(hb) for hb in heartbeats])
            if claim:
                await idempotency_keys.record(conn, claim, requested_id)
            notes = _notifications(appended)
            if notes and self._postgres:
                await conn.execute(
                    sa.text("SELECT pg_notify(:channel, n) FROM unnest(CAST(:notes AS text[])) n"),
                    {"channel": self.channel, "notes": [note.to_json() for note in notes]},
                )
        if notes and self.notifier is not None:
            self.notifier.publish(notes)
        return AppendResult(tuple(appended), frozenset(duplicates), states)

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction holding the append lock (see module docstring): no
        append commits until it ends. For maintenance work such as `rebuild(swap=True)`."""
        lock: Any = contextlib.nullcontext()
        if not self._postgres:
            lock = _sqlite_writer_locks.setdefault(self.engine.sync_engine, asyncio.Lock())
        async with lock, self.engine.connect() as conn:
            if not self._postgres:
                await conn.execution_options(**{SQLITE_BEGIN_IMMEDIATE: True})
            async with conn.begin():
                if self._postgres:
                    await conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK}
                    )
                yield conn

    async def _fold(
        self, conn: AsyncConnection, stored: list[StoredEvent]
    ) -> dict[str, TrainingState]:
        ids = list(dict.fromkeys(s.event.training_id for s in stored))  # all set (see _split)
        projection = Projection(await readmodels.trainings_by_id(conn, ids))
        for position, _recorded, event in stored:
            projection.apply(position, event)
        states = {i: projection.trainings[i] for i in ids}
        await sql.write_read_models(
            conn, states.values(), projection.epochs.values(), projection.models.values()
        )
        return states

    async def set_relay_cursor(self, name: str, position: int) -> None:
        async with self.engine.begin() as conn:
            await sql.upsert(conn, t.relay_cursor, [{"name": name, "position": position}])

    # --- reading the log -------------------------------------------------------------------

    async def read_stream(
        self, training_id: str, after: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        query = select_events().where(
            t.events.c.training_id == training_id, t.events.c.global_position > after
        )
        return await self._read(query.limit(limit) if limit is not None else query)

    async def read_all(
        self, after: int = 0, limit: int = 1000, sources: Collection[str] | None = None
    ) -> list[StoredEvent]:
        query = select_events().where(t.events.c.global_position > after).limit(limit)
        if sources is not None:
            query = query.where(_source_filter(sources))
        return await self._read(query)

    async def max_position(self) -> int:
        async with self.engine.connect() as conn:
            value = await conn.scalar(sa.select(sa.func.max(t.events.c.global_position)))
        return int(value or 0)

    async def state_as_of(self, training_id: str, position: int) -> TrainingState | None:
        """The training as it was once the log reached `position` (refolded from the log)."""
        query = select_events().where(
            t.events.c.training_id == training_id, t.events.c.global_position <= position
        )
        return fold_stream([(s.position, s.event) for s in await self._read(query)])

    async def _read(self, query: sa.Select) -> list[StoredEvent]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [stored_event(row) for row in rows]

    # --- reading the read models -----------------------------------------------------------

    async def get_training(self, training_id: str) -> TrainingState | None:
        async with self.engine.connect() as conn:
            return (await readmodels.trainings_by_id(conn, [training_id])).get(training_id)

    async def list_trainings(
        self,
        *,
        tenant: str | None = None,
        status: str | Collection[str] | None = None,
        strategy: str | None = None,
        after_cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[TrainingState], str | None]:
        """Newest first. Pass the returned cursor back as `after_cursor` for the next page."""
        async with self.engine.connect() as conn:
            return await readmodels.list_trainings(
                conn,
                tenant=tenant,
                status=status,
                strategy=strategy,
                after_cursor=after_cursor,
                limit=limit,
            )

    async def list_epochs(self, training_id: str, attempt: int | None = None) -> list[EpochRow]:
        async with self.engine.connect() as conn:
            return await readmodels.list_epochs(conn, training_id, attempt)

    async def list_models(
        self,
        *,
        strategy: str | None = None,
        timeframe: str | None = None,
        tenant: str | None = None,
        limit: int = 100,
    ) -> list[ModelRow]:
        async with self.engine.connect() as conn:
            return await readmodels.list_models(
                conn, strategy=strategy, timeframe=timeframe, tenant=tenant, limit=limit
            )

    async def list_trainers(self) -> list[TrainerRow]:
        async with self.engine.connect() as conn:
            return await readmodels.list_trainers(conn)

    async def get_relay_cursor(self, name: str) -> int:
        async with self.engine.connect() as conn:
            value = await conn.scalar(
                sa.select(t.relay_cursor.c.position).where(t.relay_cursor.c.name == name)
            )
        return int(value or 0)

    async def idempotency_record(self, tenant: str, key: str) -> IdempotencyRecord | None:
        """The claim an earlier request with this tenant + Idempotency-Key recorded: its
        training and request hash (`record.replay_for(claim)` checks a retry against it)."""
        async with self.engine.connect() as conn:
            return await idempotency_keys.recorded(conn, tenant, key)

    async def idempotent_training_id(self, tenant: str, key: str) -> str | None:
        """The training an earlier request with this tenant + Idempotency-Key created."""
        record = await self.idempotency_record(tenant, key)
        return None if record is None else record.training_id


# --- helpers -------------------------------------------------------------------------------------


def _source_filter(sources: Collection[str]) -> sa.ColumnElement[bool]:
    if isinstance(sources, str):
        raise TypeError("sources must be a collection of names, e.g. {'api', 'projector'}")
    exact = [s for s in sources if not s.endswith("*")]
    clauses = [t.events.c.source.in_(exact)] if exact else []
    clauses += [
        t.events.c.source.startswith(s[:-1], autoescape=True) for s in sources if s.endswith("*")
    ]
    return sa.or_(*clauses) if clauses else sa.false()


def _split(events: Sequence[ev.Event]) -> tuple[list[ev.TrainerHeartbeat], list[ev.Event]]:
    heartbeats, stream = [], []
    for event in events:
        if isinstance(event, ev.TrainerHeartbeat):
            heartbeats.append(event)
        elif event.training_id is None:
            raise ValueError(f"{event.type} {event.event_id}: training_id is required")
        else:
            stream.append(event)
    return heartbeats, stream


def _notifications(stored: list[StoredEvent]) -> list[Notification]:
    latest: dict[str | None, Notification] = {}
    for position, _recorded, event in stored:  # position order: the last one per training wins
        latest[event.training_id] = Notification(position, event.training_id, event.type)
    return sorted(latest.values())
