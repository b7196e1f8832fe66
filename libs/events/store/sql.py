"""The SQL event store: append-only log + read models folded in the same transaction
(architecture.md §5), on PostgreSQL or SQLite. The contract is in port.py.

Appends are serialised so global_position is assigned in commit order (a reader that has seen
position N never later finds a smaller one): on Postgres every append locks the log's head row
(`log_head`, FOR UPDATE, or the conditional UPDATE of pg_append.py), numbers its events after
it and advances it; SQLite uses `BEGIN IMMEDIATE` (the database's single write lock) plus a
per-engine asyncio lock so this process's writers queue without busy-waiting.

On Postgres an append that folds and claims no Idempotency-Key is one read and one write
statement (pg_append.py: three round trips with the pool's pre-ping); the others, and any that
lose the race for the head, run in a locked transaction.

Decisions worth knowing:
- Duplicates are skipped with `INSERT ... ON CONFLICT (event_id) DO NOTHING`.
- Notifications: Postgres `pg_notify`s inside the transaction (delivered at commit, to every
  process); on either backend `notifier.publish()` runs after the commit.
- Reads are single SELECTs. On Postgres they run on an AUTOCOMMIT view of the engine (same
  pool): a pooled read is then the pre-ping and the SELECT alone, not BEGIN + SELECT +
  ROLLBACK around it — tailing readers (the relay, SSE streams) read once per commit. On
  SQLite, whose BEGIN the engine emits by hand (db.py), reads use the engine itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from libs.events import catalog as ev
from libs.events import tables as t
from libs.events.db import SQLITE_BEGIN_IMMEDIATE
from libs.events.notify.port import DEFAULT_CHANNEL, Notifier
from libs.events.readmodels import models, trainers, training_epochs, trainings
from libs.events.readmodels.projection import Projection
from libs.events.readmodels.trainings import TrainingState, fold_stream
from libs.events.readmodels.unit import ReadModel, RowT
from libs.events.store import pg_append, rules
from libs.events.store.apikeys import ApiKeyRecord, DuplicateApiKey
from libs.events.store.idempotency import IdempotencyClaim, IdempotencyRecord
from libs.events.store.lease import AdvisoryLease
from libs.events.store.port import AppendResult, Idempotency, RelayLease, StoredEvent
from libs.events.store.rows import insert_new, select_events, stored_event
from libs.events.store.upsert import upsert, write_projection, write_rows

# Postgres: appends lock the log's head row and number their events after it (tables.log_head).
_LOCK_HEAD = sa.select(pg_append.HEAD).where(t.log_head.c.id == 1).with_for_update(of=t.log_head)
_HEAD = "ktrdr_log_head"
_ADVANCE_HEAD = sa.text(
    "UPDATE log_head SET position = :position WHERE id = 1 RETURNING ("
    + pg_append.KEEP_IDENTITY_AHEAD.format(position=":position")
    + ")"
)

_sqlite_writer_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()
_keys = t.idempotency_keys.c


class SqlEventStore:
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
        # Where single-SELECT reads go (see the module docstring).
        self.read_engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self._postgres else engine
        )

    # --- writing ---------------------------------------------------------------------------

    async def append(
        self,
        events: Sequence[ev.Event],
        *,
        fold: bool = True,
        idempotency: Idempotency | None = None,
    ) -> AppendResult:
        recorded, stream, claim, requested_id = rules.plan(events, idempotency)
        if self._postgres and fold and claim is None:
            async with self.read_engine.connect() as conn:  # autocommit: see pg_append
                done = await pg_append.append(conn, stream, recorded, self.channel)
            if done is not None:
                result, notes = done
                if notes and self.notifier is not None:
                    self.notifier.publish(notes)
                return result
            # Another append moved the head between the read and the write: take the lock.
        async with self.write_transaction() as conn:
            if claim:
                replay = await _earlier_training(conn, claim)
                if replay is not None:
                    states = await trainings.trainings_by_id(conn, [replay])
                    return AppendResult(states=states, replayed_training_id=replay)
            head = conn.info.get(_HEAD, 0)
            appended, duplicates = await insert_new(conn, stream, after=head)
            if appended and self._postgres:
                await conn.execute(_ADVANCE_HEAD, {"position": appended[-1].position})
            states = await self._fold(conn, appended) if fold else {}
            for model, rows in recorded:
                await write_rows(conn, model, rows)
            if claim:
                await _record_claim(conn, claim, requested_id)
            notes = rules.notifications(appended)
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
                    conn.info[_HEAD] = await conn.scalar(_LOCK_HEAD)
                try:
                    yield conn
                finally:
                    conn.info.pop(_HEAD, None)

    @asynccontextmanager
    async def read_snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a read transaction that sees one snapshot throughout (REPEATABLE READ
        on Postgres; one read transaction in SQLite's WAL). For `rebuild` comparing log and
        tables on a busy system."""
        async with self.engine.connect() as conn:
            if self._postgres:
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    async def _fold(
        self, conn: AsyncConnection, stored: list[StoredEvent]
    ) -> dict[str, TrainingState]:
        ids = rules.training_ids(stored)
        projection = Projection(await trainings.trainings_by_id(conn, ids))
        for position, _recorded, event in stored:
            projection.apply(position, event)
        await write_projection(conn, projection)
        return {i: projection.trainings[i] for i in ids}

    async def set_relay_cursor(self, name: str, position: int) -> None:
        async with self.engine.begin() as conn:
            await upsert(conn, t.relay_cursor, [{"name": name, "position": position}])

    def relay_lease(self, name: str) -> RelayLease | None:
        return AdvisoryLease(self.engine, name) if self._postgres else None

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
        async with self.read_engine.connect() as conn:
            value = await conn.scalar(sa.select(sa.func.max(t.events.c.global_position)))
        return int(value or 0)

    async def state_as_of(self, training_id: str, position: int) -> TrainingState | None:
        query = select_events().where(
            t.events.c.training_id == training_id, t.events.c.global_position <= position
        )
        return fold_stream([(s.position, s.event) for s in await self._read(query)])

    async def _read(self, query: sa.Select[Any]) -> list[StoredEvent]:
        async with self.read_engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [stored_event(row) for row in rows]

    # --- reading the read models -----------------------------------------------------------

    async def get_training(self, training_id: str) -> TrainingState | None:
        async with self.read_engine.connect() as conn:
            return (await trainings.trainings_by_id(conn, [training_id])).get(training_id)

    async def list_trainings(
        self,
        *,
        tenant: str | None = None,
        status: str | Collection[str] | None = None,
        strategy: str | None = None,
        after_cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[TrainingState], str | None]:
        async with self.read_engine.connect() as conn:
            return await trainings.list_trainings(
                conn,
                tenant=tenant,
                status=status,
                strategy=strategy,
                after_cursor=after_cursor,
                limit=limit,
            )

    async def list_epochs(
        self, training_id: str, attempt: int | None = None
    ) -> list[training_epochs.EpochRow]:
        async with self.read_engine.connect() as conn:
            return await training_epochs.list_epochs(conn, training_id, attempt)

    async def list_models(
        self,
        *,
        strategy: str | None = None,
        timeframe: str | None = None,
        tenant: str | None = None,
        limit: int = 100,
    ) -> list[models.ModelRow]:
        async with self.read_engine.connect() as conn:
            return await models.list_models(
                conn, strategy=strategy, timeframe=timeframe, tenant=tenant, limit=limit
            )

    async def list_trainers(self) -> list[trainers.TrainerRow]:
        async with self.read_engine.connect() as conn:
            return await trainers.list_trainers(conn)

    async def find(
        self,
        model: ReadModel[RowT],
        *,
        where: Mapping[str, Any] | None = None,
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[RowT]:
        columns = model.table.c
        query = sa.select(model.table).where(
            *(columns[name] == value for name, value in (where or {}).items())
        )
        for name in order_by:
            descending = name.startswith("-")
            column = columns[name.removeprefix("-")]
            query = query.order_by(column.desc() if descending else column)
        if limit is not None:
            query = query.limit(limit)
        async with self.read_engine.connect() as conn:
            return [model.load(row) for row in await conn.execute(query)]

    async def get_relay_cursor(self, name: str) -> int:
        async with self.read_engine.connect() as conn:
            value = await conn.scalar(
                sa.select(t.relay_cursor.c.position).where(t.relay_cursor.c.name == name)
            )
        return int(value or 0)

    async def idempotency_record(self, tenant: str, key: str) -> IdempotencyRecord | None:
        async with self.read_engine.connect() as conn:
            return await _recorded(conn, tenant, key)

    async def idempotent_training_id(self, tenant: str, key: str) -> str | None:
        record = await self.idempotency_record(tenant, key)
        return None if record is None else record.training_id

    # --- API keys --------------------------------------------------------------------------

    async def add_api_key(self, record: ApiKeyRecord) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(sa.insert(t.api_keys).values(**record.to_row()))
        except sa.exc.IntegrityError:
            raise DuplicateApiKey(record.key_id) from None

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        query = sa.select(t.api_keys).where(t.api_keys.c.key_id == key_id)
        async with self.read_engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else ApiKeyRecord(**row._mapping)

    async def api_keys(self, *, tenant: str | None = None) -> list[ApiKeyRecord]:
        c = t.api_keys.c
        query = sa.select(t.api_keys).order_by(c.created_at, c.key_id)
        if tenant is not None:
            query = query.where(c.tenant == tenant)
        async with self.read_engine.connect() as conn:
            return [ApiKeyRecord(**row._mapping) for row in await conn.execute(query)]

    async def revoke_api_key(self, key_id: str, at: datetime) -> ApiKeyRecord | None:
        c = t.api_keys.c
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(t.api_keys)
                .where(c.key_id == key_id, c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        return await self.api_key(key_id)

    async def touch_api_key(self, key_id: str, at: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(t.api_keys).where(t.api_keys.c.key_id == key_id).values(last_used_at=at)
            )


# --- helpers -------------------------------------------------------------------------------------


def _source_filter(sources: Collection[str]) -> sa.ColumnElement[bool]:
    exact, prefixes = rules.parse_sources(sources)
    clauses: list[sa.ColumnElement[bool]] = [t.events.c.source.in_(exact)] if exact else []
    clauses += [t.events.c.source.startswith(p, autoescape=True) for p in prefixes]
    return sa.or_(*clauses) if clauses else sa.false()


async def _recorded(conn: AsyncConnection, tenant: str, key: str) -> IdempotencyRecord | None:
    query = sa.select(_keys.training_id, _keys.request_hash).where(
        _keys.tenant == tenant, _keys.key == key
    )
    row = (await conn.execute(query)).first()
    return None if row is None else IdempotencyRecord(row.training_id, row.request_hash)


async def _earlier_training(conn: AsyncConnection, claim: IdempotencyClaim) -> str | None:
    """The training an earlier request with this key made; IdempotencyConflict if it differed."""
    record = await _recorded(conn, claim.tenant, claim.key)
    return None if record is None else record.replay_for(claim)


async def _record_claim(conn: AsyncConnection, claim: IdempotencyClaim, training_id: str) -> None:
    await conn.execute(
        sa.insert(t.idempotency_keys).values(
            tenant=claim.tenant,
            key=claim.key,
            training_id=training_id,
            request_hash=claim.request_hash,
            created_at=datetime.now(UTC),
        )
    )
