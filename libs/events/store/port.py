"""The event store port: what the services and the relay ask of a store (architecture.md §5).

Two adapters keep the same contract (tests/contract/test_store_contract.py runs one suite on
both, and on both SQL backends):
- `SqlEventStore` (sql.py): PostgreSQL or SQLite through SQLAlchemy, the production store;
- `InMemoryEventStore` (memory.py): no I/O, for unit tests.

Semantics every adapter keeps:
- `append` stores the new events (duplicates by event_id — already stored, or repeated within
  the call — are skipped and not folded again) and folds them into every registered read model
  (libs/events/readmodels/registry.py) atomically: a failing fold stores nothing. Positions are
  assigned in commit order. Events the catalog marks `STORED = False` (heartbeats) only update
  the read models that record them. A naive timestamp or a stream event without training_id
  is refused.
- After the commit, one notification per training touched (its highest new position and that
  event's type) reaches the notifier: a wake-up hint for tailing readers.
- `read_all(sources=...)`: exact source names, or a prefix ending in "*" (e.g. "trainer:*").
- API keys (apikeys.py): `add_api_key` refuses a second key with the same id
  (DuplicateApiKey); `api_key` reads the row as stored now, on every call (no cache: a revoke
  is seen by every process at once); `revoke_api_key` keeps the first revocation time.
- An idempotency claim (tenant, key, request hash) makes the append create at most one
  training per tenant + key; a retry gets that training back (`replayed_training_id`), a
  different request under the same key raises IdempotencyConflict.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from libs.events.catalog import Event
from libs.events.readmodels.models import ModelRow
from libs.events.readmodels.trainers import TrainerRow
from libs.events.readmodels.training_epochs import EpochRow
from libs.events.readmodels.trainings import TrainingState
from libs.events.readmodels.unit import ReadModel, RowT
from libs.events.store.apikeys import ApiKeyRecord
from libs.events.store.idempotency import IdempotencyClaim, IdempotencyRecord


class StoredEvent(NamedTuple):
    position: int
    recorded_at: datetime
    event: Event


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


class RelayLease(Protocol):
    """Exclusive right to publish under one relay name, across processes."""

    async def hold(self) -> bool:
        """True while this process holds the lease (acquiring it if free)."""
        ...

    async def release(self) -> None: ...


Idempotency = IdempotencyClaim | tuple[str, str, str]  # a claim, or (tenant, key, request hash)


class EventLog(Protocol):
    """The log side of the store: what tailing readers and the relay use."""

    async def read_stream(
        self, training_id: str, after: int = 0, limit: int | None = None
    ) -> list[StoredEvent]: ...

    async def read_all(
        self, after: int = 0, limit: int = 1000, sources: Collection[str] | None = None
    ) -> list[StoredEvent]: ...

    async def max_position(self) -> int: ...


class EventStore(EventLog, Protocol):
    async def append(
        self,
        events: Sequence[Event],
        *,
        fold: bool = True,
        idempotency: Idempotency | None = None,
    ) -> AppendResult:
        """Store the new events and fold them into the read models, atomically. `fold=False`
        stores them only (tests of the log alone)."""
        ...

    async def state_as_of(self, training_id: str, position: int) -> TrainingState | None:
        """The training as it was once the log reached `position` (refolded from the log)."""
        ...

    async def get_training(self, training_id: str) -> TrainingState | None: ...

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
        ...

    async def list_epochs(self, training_id: str, attempt: int | None = None) -> list[EpochRow]: ...

    async def list_models(
        self,
        *,
        strategy: str | None = None,
        timeframe: str | None = None,
        tenant: str | None = None,
        limit: int = 100,
    ) -> list[ModelRow]:
        """Grouped by strategy and timeframe, newest version first."""
        ...

    async def list_trainers(self) -> list[TrainerRow]: ...

    async def find(
        self,
        model: ReadModel[RowT],
        *,
        where: Mapping[str, Any] | None = None,
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[RowT]:
        """Rows of any registered read model: `where` column == value for each item, ordered by
        `order_by` columns ("-name" for descending). A new read model is readable through this
        without a method of its own."""
        ...

    async def get_relay_cursor(self, name: str) -> int: ...

    async def set_relay_cursor(self, name: str, position: int) -> None: ...

    def relay_lease(self, name: str) -> RelayLease | None:
        """A lease for relays sharing this store across processes; None where only one
        process can use the store (SQLite, in memory)."""
        ...

    async def idempotency_record(self, tenant: str, key: str) -> IdempotencyRecord | None:
        """The claim an earlier request with this tenant + Idempotency-Key recorded: its
        training and request hash (`record.replay_for(claim)` checks a retry against it)."""
        ...

    async def idempotent_training_id(self, tenant: str, key: str) -> str | None:
        """The training an earlier request with this tenant + Idempotency-Key created."""
        ...

    async def add_api_key(self, record: ApiKeyRecord) -> None:
        """Store a new key (DuplicateApiKey if its id is taken)."""
        ...

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        """The key's row as stored now (revoked and expired keys included)."""
        ...

    async def api_keys(self, *, tenant: str | None = None) -> list[ApiKeyRecord]:
        """Every key (of one tenant), oldest first."""
        ...

    async def revoke_api_key(self, key_id: str, at: datetime) -> ApiKeyRecord | None:
        """Revoke the key (a revoked key keeps its first revocation time); None if unknown."""
        ...

    async def touch_api_key(self, key_id: str, at: datetime) -> None:
        """Record that the key was used at `at`."""
        ...
