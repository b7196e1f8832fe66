"""CancelRequested (and terminal events) from the control stream → cancellation tokens.

`ControlState` is fed every event of the control stream, which the trainer reads from the
start on boot. It remembers, in bounded memory, which trainings were cancelled and which
already reached a terminal state, and holds the token of every training running here, so a
CancelRequested for one of them stops it within one batch. Everything here runs on the event
loop except `RunToken.is_cancelled`, which the training thread calls after every batch.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from libs.events.catalog import TERMINAL_TYPES, CancelRequested, Event


class StopReason(StrEnum):
    USER = "user"  # CancelRequested → publish Cancelled
    LEASE = "lease"  # the delivery was held for lease_s → checkpoint, hand over to a fresh copy
    SHUTDOWN = "shutdown"  # SIGTERM grace expired → give the request back, publish nothing
    DELIVERY_LOST = "delivery_lost"  # the broker took the request back → it runs elsewhere
    SUPERSEDED = "superseded"  # another attempt already finished this training


class RunToken:
    """The CancellationToken of one run; the first reason to stop wins."""

    def __init__(
        self,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        can_hand_over: Callable[[], bool] = lambda: True,
    ) -> None:
        self._stop = threading.Event()
        self._deadline = deadline  # the lease's end
        self._clock = clock
        # Whether stopping now would keep progress: a hand-over only pays where the run
        # checkpoints (within training, after this attempt's first batch), or attempts that
        # never reach training would hand over forever.
        self._can_hand_over = can_hand_over
        self.reason: StopReason | None = None
        self.detail = ""

    def cancel(self, reason: StopReason, detail: str = "") -> bool:
        """True when this call stopped the run (False: it was already stopping)."""
        if self._stop.is_set():
            return False
        self.reason, self.detail = reason, detail
        self._stop.set()
        return True

    def is_cancelled(self) -> bool:
        if self._stop.is_set():
            return True
        if self._deadline is not None and self._clock() >= self._deadline and self._can_hand_over():
            self.cancel(StopReason.LEASE, "the delivery was held for lease_s")
            return True
        return False


K = TypeVar("K")
V = TypeVar("V")


class BoundedMap(Generic[K, V]):
    """A dict that forgets its oldest entries beyond `max_size`."""

    def __init__(self, max_size: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._max = max_size

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Running:
    token: RunToken
    source: str
    attempt: int
    batches: Callable[[], int] = lambda: 0  # batches run so far (for the log line)


class ControlState:
    def __init__(self, memory: int = 100_000) -> None:
        self._cancelled: BoundedMap[str, str] = BoundedMap(memory)  # training_id → reason
        self._terminal: BoundedMap[str, str] = BoundedMap(memory)  # training_id → event type
        self._running: dict[str, Running] = {}
        self.applied = 0

    def apply(self, event: Event) -> Running | None:
        """Fold one control-stream event (idempotent: replays and duplicates are harmless).
        Returns the run here that this event told to stop, if any."""
        self.applied += 1
        training_id = event.training_id
        if training_id is None:
            return None
        running = self._running.get(training_id)
        if isinstance(event, CancelRequested):
            self._cancelled.put(training_id, event.reason)
            if running is not None and running.token.cancel(StopReason.USER, event.reason):
                return running
        elif event.type in TERMINAL_TYPES:
            self._terminal.put(training_id, event.type)
            # Our own terminal event comes back through the stream too; anyone else's means
            # this run is redundant (the broker gave the request to another attempt).
            if running is not None and (event.source, event.attempt) != (
                running.source,
                running.attempt,
            ):
                by = f"{event.type} by {event.source} (attempt {event.attempt})"
                if running.token.cancel(StopReason.SUPERSEDED, by):
                    return running
        return None

    def cancel_reason(self, training_id: str) -> str | None:
        return self._cancelled.get(training_id)

    def terminal_type(self, training_id: str) -> str | None:
        return self._terminal.get(training_id)

    def register(
        self,
        training_id: str,
        token: RunToken,
        *,
        source: str,
        attempt: int,
        batches: Callable[[], int] | None = None,
    ) -> None:
        self._running[training_id] = Running(token, source, attempt, batches or (lambda: 0))

    def unregister(self, training_id: str, token: RunToken) -> None:
        running = self._running.get(training_id)
        if running is not None and running.token is token:
            del self._running[training_id]

    def running_ids(self) -> list[str]:
        return list(self._running)

    def cancel_all(self, reason: StopReason, detail: str = "") -> None:
        for running in self._running.values():
            running.token.cancel(reason, detail)
