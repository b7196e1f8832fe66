"""Read-model rows as plain frozen dataclasses: what folds produce and what the store returns.

`TrainingState` mirrors a `trainings` row column for column (same names), so converting between
the two is mechanical (`to_row` / `from_row`). JSON columns hold plain dicts/lists; treat them as
read-only (folds always build new ones).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

QUEUED = "queued"
RUNNING = "running"
CANCELLING = "cancelling"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (QUEUED, RUNNING, CANCELLING, COMPLETED, FAILED, CANCELLED)
TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, CANCELLED})
ACTIVE_STATUSES = frozenset({QUEUED, RUNNING, CANCELLING})


@dataclass(frozen=True)  # no slots: evolve() copies __dict__, far cheaper than __init__
class TrainingState:
    training_id: str
    tenant: str
    status: str
    attempt: int
    cancel_requested: bool
    updated_at: datetime
    first_position: int
    last_position: int
    strategy: str | None = None
    symbols: list[str] | None = None
    timeframes: list[str] | None = None
    device_requested: str | None = None
    phase: str | None = None
    phase_index: int | None = None
    epoch: int | None = None
    total_epochs: int | None = None
    batch: int | None = None
    total_batches: int | None = None
    progress: float | None = None
    eta_s: float | None = None
    latest_metrics: dict[str, Any] | None = None
    best_metrics: dict[str, Any] | None = None
    test_metrics: dict[str, Any] | None = None
    trainer_id: str | None = None
    device: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    idempotency_key: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in TRAINING_FIELDS}

    def evolve(self, changes: dict[str, Any]) -> TrainingState:
        """A copy with `changes` applied: dataclasses.replace without re-running __init__
        (folds call this once per event; replace() was half of the rebuild's time)."""
        if not changes.keys() <= _TRAINING_FIELD_SET:
            raise AttributeError(
                f"not TrainingState fields: {sorted(changes.keys() - _TRAINING_FIELD_SET)}"
            )
        new = object.__new__(TrainingState)
        values = new.__dict__
        values.update(self.__dict__)
        values.update(changes)
        return new

    @classmethod
    def from_row(cls, row: Any) -> TrainingState:
        mapping = row._mapping if hasattr(row, "_mapping") else row
        return cls(**{name: mapping[name] for name in TRAINING_FIELDS})


@dataclass(frozen=True, slots=True)
class EpochRow:
    training_id: str
    attempt: int
    epoch: int
    total_epochs: int
    # None where the trainer reported NaN/inf (see folds.py)
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
    def key(self) -> tuple[str, str, int]:
        return (self.strategy, self.timeframe, self.version)

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


TRAINING_FIELDS = tuple(f.name for f in dataclasses.fields(TrainingState))


_TRAINING_FIELD_SET = frozenset(TRAINING_FIELDS)
EPOCH_FIELDS = tuple(f.name for f in dataclasses.fields(EpochRow))
MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelRow))
TRAINER_FIELDS = tuple(f.name for f in dataclasses.fields(TrainerRow))


def row_to(cls: type, row: Any) -> Any:
    """Build EpochRow / ModelRow / TrainerRow from a SQLAlchemy row (or mapping)."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return cls(**{f.name: mapping[f.name] for f in dataclasses.fields(cls)})
