"""The two small protocols that carry all coordination into the pipeline.

`train_strategy()` knows nothing of buses, HTTP or asyncio. Whoever calls it passes a Reporter
(told about phases, batches and epochs) and a CancellationToken (asked between phases and after
every batch). Adapters for the bus trainer and the local CLI live with those entry points.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

# The one phase sequence, in order (architecture.md §4). Reporters receive these exact names.
PHASES: tuple[str, ...] = (
    "data_loading",
    "indicators",
    "fuzzy",
    "features",
    "labels",
    "combining",
    "splitting",
    "model_creation",
    "training",
    "evaluation",
    "saving",
)


@dataclass(frozen=True)
class BatchInfo:
    epoch: int  # 1-based
    total_epochs: int
    batch: int  # 1-based within the epoch
    total_batches: int
    # Running mean loss / accuracy over the epoch's batches folded so far; None before the
    # epoch's first fold (statistics are folded lazily, see training/loop.py).
    loss: float | None
    accuracy: float | None
    samples_per_s: float
    progress: float  # 0..1 over the whole training phase
    eta_s: float | None


@dataclass(frozen=True)
class EpochInfo:
    epoch: int  # 1-based
    total_epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    duration_s: float
    best_epoch: int


class Reporter:
    """Told what the pipeline is doing, from the thread that runs it. Every hook does nothing
    here: an adapter subclasses Reporter and overrides the hooks it shows, so a new hook is
    added here, called by the pipeline, and overridden only where someone wants it."""

    def phase_started(self, phase: str, index: int, total: int, message: str) -> None:
        """Phase `phase` (`PHASES[index]`, one of `total`) starts."""

    def batch_progress(self, info: BatchInfo) -> None:
        """A training batch finished (after every batch: adapters throttle themselves)."""

    def epoch_completed(self, info: EpochInfo) -> None:
        """An epoch finished, validation included."""


class CancellationToken(Protocol):
    def is_cancelled(self) -> bool: ...


class TrainingCancelled(Exception):
    """Raised by the pipeline when its token says stop; nothing partial has been saved."""

    def __init__(self, phase: str, epoch: int | None = None) -> None:
        super().__init__(f"training cancelled during {phase}")
        self.phase = phase
        self.epoch = epoch


class NullReporter(Reporter):
    """Reports nothing: for callers that only want the result."""


class Never:
    """A token that is never cancelled."""

    def is_cancelled(self) -> bool:
        return False


class CancelFlag:
    """A thread-safe token that any thread (a signal handler, an event loop) can set."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_cancelled(self) -> bool:
        return self._event.is_set()
