"""An event store in memory: no I/O, for unit tests and single-process experiments.

It keeps the port's contract exactly like the SQL store (tests/contract/test_store_contract.py
runs the same suite on both): the same folds through `Projection`, the same read-model rules
from the registry, the same notifications. An append runs without awaiting anything, so on one
event loop appends are atomic and serialised by construction; everything it changes is computed
first and committed at the end, so a failing fold stores nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from libs.events import catalog as ev
from libs.events.notify.port import Notifier
from libs.events.readmodels import models, trainers, training_epochs
from libs.events.readmodels.models import ModelRow
from libs.events.readmodels.projection import Projection
from libs.events.readmodels.registry import READ_MODELS, TRAININGS
from libs.events.readmodels.trainers import TrainerRow
from libs.events.readmodels.training_epochs import EpochRow
from libs.events.readmodels.trainings import (
    TrainingState,
    check_limit,
    fold_stream,
    page,
    parse_cursor,
    statuses,
)
from libs.events.readmodels.unit import ReadModel, RowT
from libs.events.store import rules
from libs.events.store.apikeys import ApiKeyRecord, DuplicateApiKey
from libs.events.store.idempotency import IdempotencyRecord
from libs.events.store.port import AppendResult, Idempotency, RelayLease, StoredEvent


class InMemoryEventStore:
    def __init__(self, *, notifier: Notifier | None = None) -> None:
        self.notifier = notifier
        self._log: list[StoredEvent] = []
        self._event_ids: set[UUID] = set()
        self._tables: dict[str, dict[Hashable, Any]] = {model.name: {} for model in READ_MODELS}
        self._relay_cursors: dict[str, int] = {}
        self._claims: dict[tuple[str, str], IdempotencyRecord] = {}
        self._api_keys: dict[str, ApiKeyRecord] = {}

    # --- writing ---------------------------------------------------------------------------

    async def append(
        self,
        events: Sequence[ev.Event],
        *,
        fold: bool = True,
        idempotency: Idempotency | None = None,
    ) -> AppendResult:
        recorded, stream, claim, requested_id = rules.plan(events, idempotency)
        if claim:
            earlier = self._claims.get((claim.tenant, claim.key))
            if earlier is not None:
                replay = earlier.replay_for(claim)
                known = self._tables[TRAININGS.name].get(replay)
                return AppendResult(
                    states={} if known is None else {replay: known},
                    replayed_training_id=replay,
                )
        recorded_at = datetime.now(UTC)
        for event in stream:
            _aware(event.occurred_at)
        appended, duplicates = self._new(stream, recorded_at)
        projection = self._fold(appended) if fold else None
        # Nothing has failed: commit.
        self._log += appended
        self._event_ids.update(stored.event.event_id for stored in appended)
        states: dict[str, TrainingState] = {}
        if projection is not None:
            for model in READ_MODELS:
                if model.rebuilt:
                    self._write(model, projection.rows(model).values())
            states = {i: projection.trainings[i] for i in rules.training_ids(appended)}
        for model, rows in recorded:
            self._write(model, rows)
        if claim:
            record = IdempotencyRecord(requested_id, claim.request_hash)
            self._claims[(claim.tenant, claim.key)] = record
        notes = rules.notifications(appended)
        if notes and self.notifier is not None:
            self.notifier.publish(notes)
        return AppendResult(tuple(appended), frozenset(duplicates), states)

    def _new(
        self, stream: Sequence[ev.Event], recorded_at: datetime
    ) -> tuple[list[StoredEvent], set[UUID]]:
        appended: list[StoredEvent] = []
        duplicates: set[UUID] = set()
        seen: set[UUID] = set()
        position = self._log[-1].position if self._log else 0
        for event in stream:
            if event.event_id in self._event_ids or event.event_id in seen:
                duplicates.add(event.event_id)
                continue
            seen.add(event.event_id)
            position += 1
            appended.append(StoredEvent(position, recorded_at, event))
        return appended, duplicates

    def _fold(self, appended: list[StoredEvent]) -> Projection:
        trainings = self._tables[TRAININGS.name]
        ids = rules.training_ids(appended)
        projection = Projection({i: trainings[i] for i in ids if i in trainings})
        for position, _recorded, event in appended:
            projection.apply(position, event)
        return projection

    def _write(self, model: ReadModel[Any], rows: Any) -> None:
        table = self._tables[model.name]
        for row in rows:
            key = model.key(row)
            table[key] = model.merge(table.get(key), row)

    async def set_relay_cursor(self, name: str, position: int) -> None:
        self._relay_cursors[name] = position

    def relay_lease(self, name: str) -> RelayLease | None:
        return None  # one process holds the store: nothing to share

    # --- reading the log -------------------------------------------------------------------

    async def read_stream(
        self, training_id: str, after: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        found = [s for s in self._log if s.position > after and s.event.training_id == training_id]
        return found if limit is None else found[:limit]

    async def read_all(
        self, after: int = 0, limit: int = 1000, sources: Collection[str] | None = None
    ) -> list[StoredEvent]:
        found = [s for s in self._log if s.position > after]
        if sources is not None:
            exact, prefixes = rules.parse_sources(sources)
            found = [
                s
                for s in found
                if s.event.source in exact or s.event.source.startswith(tuple(prefixes))
            ]
        return found[:limit]

    async def max_position(self) -> int:
        return self._log[-1].position if self._log else 0

    async def state_as_of(self, training_id: str, position: int) -> TrainingState | None:
        return fold_stream(
            [
                (s.position, s.event)
                for s in self._log
                if s.position <= position and s.event.training_id == training_id
            ]
        )

    # --- reading the read models -----------------------------------------------------------

    def _rows(self, model: ReadModel[Any]) -> list[Any]:
        return list(self._tables[model.name].values())

    async def get_training(self, training_id: str) -> TrainingState | None:
        found: TrainingState | None = self._tables[TRAININGS.name].get(training_id)
        return found

    async def list_trainings(
        self,
        *,
        tenant: str | None = None,
        status: str | Collection[str] | None = None,
        strategy: str | None = None,
        after_cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[TrainingState], str | None]:
        check_limit(limit)
        wanted = None if status is None else set(statuses(status))
        below = None if after_cursor is None else parse_cursor(after_cursor)
        items: list[TrainingState] = [
            s
            for s in self._rows(TRAININGS)
            if (tenant is None or s.tenant == tenant)
            and (wanted is None or s.status in wanted)
            and (strategy is None or s.strategy == strategy)
            and (below is None or s.first_position < below)
        ]
        items.sort(key=lambda s: s.first_position, reverse=True)
        return page(items[: limit + 1], limit)

    async def list_epochs(self, training_id: str, attempt: int | None = None) -> list[EpochRow]:
        rows: list[EpochRow] = [
            e
            for e in self._rows(training_epochs.READ_MODEL)
            if e.training_id == training_id and (attempt is None or e.attempt == attempt)
        ]
        return sorted(rows, key=lambda e: (e.attempt, e.epoch))

    async def list_models(
        self,
        *,
        strategy: str | None = None,
        timeframe: str | None = None,
        tenant: str | None = None,
        limit: int = 100,
    ) -> list[ModelRow]:
        rows: list[ModelRow] = [
            m
            for m in self._rows(models.READ_MODEL)
            if m.deleted_at is None
            and (strategy is None or m.strategy == strategy)
            and (timeframe is None or m.timeframe == timeframe)
            and (tenant is None or m.tenant == tenant)
        ]
        rows.sort(key=lambda m: (m.strategy, m.timeframe, -m.version))
        return rows[:limit]

    async def list_trainers(self) -> list[TrainerRow]:
        rows: list[TrainerRow] = self._rows(trainers.READ_MODEL)
        return sorted(rows, key=lambda t: t.trainer_id)

    async def find(
        self,
        model: ReadModel[RowT],
        *,
        where: Mapping[str, Any] | None = None,
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[RowT]:
        columns = {c.name for c in model.table.columns}
        names = [*(where or {}), *(o.removeprefix("-") for o in order_by)]
        unknown = [n for n in names if n not in columns]
        if unknown:
            raise KeyError(f"{model.name} has no column {unknown[0]!r}")
        rows: list[RowT] = [
            row
            for row in self._rows(model)
            if all(getattr(row, name) == value for name, value in (where or {}).items())
        ]
        for name in reversed(order_by):  # stable sorts, least significant column first
            rows.sort(key=_sort_key(name.removeprefix("-")), reverse=name.startswith("-"))
        return rows if limit is None else rows[:limit]

    async def get_relay_cursor(self, name: str) -> int:
        return self._relay_cursors.get(name, 0)

    async def idempotency_record(self, tenant: str, key: str) -> IdempotencyRecord | None:
        return self._claims.get((tenant, key))

    async def idempotent_training_id(self, tenant: str, key: str) -> str | None:
        record = self._claims.get((tenant, key))
        return None if record is None else record.training_id

    # --- API keys --------------------------------------------------------------------------

    async def add_api_key(self, record: ApiKeyRecord) -> None:
        if record.key_id in self._api_keys:
            raise DuplicateApiKey(record.key_id)
        _aware(record.created_at)
        self._api_keys[record.key_id] = record

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._api_keys.get(key_id)

    async def api_keys(self, *, tenant: str | None = None) -> list[ApiKeyRecord]:
        found = [k for k in self._api_keys.values() if tenant is None or k.tenant == tenant]
        return sorted(found, key=lambda k: (k.created_at, k.key_id))

    async def revoke_api_key(self, key_id: str, at: datetime) -> ApiKeyRecord | None:
        found = self._api_keys.get(key_id)
        if found is None:
            return None
        if found.revoked_at is None:
            found = dataclasses.replace(found, revoked_at=_aware(at))
            self._api_keys[key_id] = found
        return found

    async def touch_api_key(self, key_id: str, at: datetime) -> None:
        found = self._api_keys.get(key_id)
        if found is not None:
            self._api_keys[key_id] = dataclasses.replace(found, last_used_at=_aware(at))


def _sort_key(name: str) -> Callable[[Any], tuple[bool, Any]]:
    # NULLs sort last ascending, first descending, as on Postgres.
    return lambda row: (getattr(row, name) is None, getattr(row, name))


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: timestamps must carry a timezone")
    return value
