"""Group commit: many deliveries, one transaction, then every ack.

The bus runs each delivery's handler in its own task (up to the prefetch). Each handler hands
its event to the `GroupCommitter` and waits; the committer takes whatever has arrived (up to
`max_batch`, lingering `linger_s` for more), appends it with ONE `store.append` (the store
de-duplicates by event_id, folds the new events into the read models and NOTIFYs, all in that
transaction), and only then releases the waiting handlers, whose return is what makes the bus
ack. Events arriving while a commit is in flight simply form the next batch, so the batch size
grows with the load by itself.

Failures (see outage.py):
- database down → the same batch is retried with backoff, forever; its handlers keep waiting,
  so nothing is acked and the broker keeps everything (a Postgres restart loses nothing);
- database up but the batch fails → it is split and each event committed alone; an event that
  still fails is a poison event: its handler raises, the bus requeues it, and the queue's
  delivery limit dead-letters it. The others are committed and acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from libs import metrics
from libs.events.bus.port import Delivery
from libs.events.catalog import Event
from libs.logs import log_context
from services.projector.admission import Admission
from services.projector.outage import Probe, database_down

log = logging.getLogger("ktrdr.projector")

Commit = Callable[[Sequence[Event]], Awaitable[Any]]


class PoisonEvent(Exception):
    """The database works, yet this event cannot be appended."""


@dataclass
class _Waiting:
    event: Event
    done: asyncio.Future[None]
    trusted: bool = False  # the projector's own events: no admission


@dataclass
class CommitStats:
    events: int = 0  # events handed to a successful commit (duplicates included)
    batches: int = 0
    largest_batch: int = 0
    retries: int = 0  # commits retried because the database was down
    poison: int = 0


class Backoff:
    def __init__(self, first_s: float, max_s: float) -> None:
        self.first_s, self.max_s = first_s, max_s
        self.next_s = first_s

    def step(self) -> float:
        delay, self.next_s = self.next_s, min(self.next_s * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self.next_s = self.first_s


class GroupCommitter:
    def __init__(
        self,
        commit: Commit,
        probe: Probe,
        *,
        max_batch: int = 500,
        linger_s: float = 0.001,
        backoff: Backoff | None = None,
        admission: Admission | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._commit, self._probe = commit, probe
        self._admission = admission
        self._max_batch, self._linger_s = max_batch, linger_s
        self._backoff = backoff or Backoff(0.05, 5.0)
        self._waiting: deque[_Waiting] = deque()
        self._in_flight: list[_Waiting] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.stats = CommitStats()
        self._stats_changed = asyncio.Condition()  # notified after every commit or retry

    async def wait_until(self, predicate: Callable[[CommitStats], bool], timeout: float) -> None:  # noqa: ASYNC109
        """Wait until `predicate(self.stats)` holds (checked after each commit or retry);
        TimeoutError after `timeout` seconds. For tests, benchmarks and health checks."""

        async def holds() -> None:
            async with self._stats_changed:
                await self._stats_changed.wait_for(lambda: predicate(self.stats))

        async with asyncio.timeout(timeout):
            await holds()

    @property
    def pending(self) -> int:
        """Events handed in and not yet committed: waiting for a batch, or in the batch being
        committed (or retried while the database is down)."""
        return len(self._waiting) + len(self._in_flight)

    async def _stats_moved(self) -> None:
        async with self._stats_changed:
            self._stats_changed.notify_all()

    # --- the handler side ----------------------------------------------------------------------
    async def submit(self, event: Event) -> None:
        """Return once `event` is committed; raise PoisonEvent if it never can be."""
        await self._enqueue(event)

    async def submit_many(self, events: Sequence[Event]) -> None:
        """Commit `events` in this order (in one batch, or in consecutive ones): the
        projector's own events (dead_letters.py), which the admission does not judge."""
        await asyncio.gather(*[self._enqueue(event, trusted=True) for event in events])

    def _enqueue(self, event: Event, *, trusted: bool = False) -> asyncio.Future[None]:
        if self._task is None or self._task.done():
            raise RuntimeError("the committer is not running (start() first)")
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(event, done, trusted))
        self._arrived.set()
        return done

    async def handle(self, delivery: Delivery) -> None:
        """A bus handler: ack (return) only after the event's commit. With an admission (checked
        in the commit loop, in delivery order), what it refuses raises Reject here
        (dead-lettered with the reason) and what the log already holds (the relay's copies of
        API events) returns without a commit."""
        await self.submit(delivery.event)

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ktrdr-projector-commit")

    async def stop(self) -> None:
        """Stop at once. Stop the subscriptions first: handlers still waiting here then get
        cancelled by the bus and their messages go back to the queue."""
        if self._task is None:
            return
        # The flag as well as the cancel: a retry loop must end even if some awaited call
        # swallowed the cancellation.
        self._stopping = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for waiting in (*self._in_flight, *self._waiting):
            waiting.done.cancel()
        self._waiting.clear()
        self._in_flight = []

    # --- the commit loop -----------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            if self._linger_s > 0 and len(self._waiting) < self._max_batch:
                await asyncio.sleep(self._linger_s)  # let the deliveries in flight join
            batch = [
                self._waiting.popleft() for _ in range(min(self._max_batch, len(self._waiting)))
            ]
            if not self._waiting:
                self._arrived.clear()
            if batch:
                self._in_flight = batch
                batch = await self._admit(batch)
                if batch:
                    await self._commit_batch(batch)
                self._in_flight = []

    async def _admit(self, batch: list[_Waiting]) -> list[_Waiting]:
        """The events of `batch` to commit, in order; the others' handlers are released: those
        the log holds already return, refused ones raise (Reject: dead-lettered). Here, in
        the one loop, rather than in each handler: reads must not reorder the deliveries."""
        if self._admission is None:
            return batch
        admitted = []
        for waiting in batch:
            if waiting.trusted:
                admitted.append(waiting)
                continue
            try:
                fold = await self._admission.fold_it(waiting.event)
            except asyncio.CancelledError:
                raise
            except Exception as refused:  # noqa: BLE001 - Reject, or a read that failed
                if not waiting.done.done():
                    waiting.done.set_exception(refused)
                continue
            if fold:
                admitted.append(waiting)
            elif not waiting.done.done():
                waiting.done.set_result(None)
        return admitted

    async def _commit_batch(self, batch: list[_Waiting]) -> None:
        while not self._stopping:
            try:
                await self._commit([w.event for w in batch])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - classified just below
                if await database_down(error, self._probe):
                    delay = self._backoff.step()
                    self.stats.retries += 1
                    log.warning(
                        "database unavailable (%s); retrying %d events in %.2fs",
                        _brief(error),
                        len(batch),
                        delay,
                    )
                    await self._stats_moved()
                    await asyncio.sleep(delay)
                    continue
                await self._isolate(batch, error)
                return
            self._backoff.reset()
            _measure([w.event for w in batch])
            self.stats.events += len(batch)
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            for waiting in batch:
                if not waiting.done.done():
                    waiting.done.set_result(None)
            await self._stats_moved()
            return

    async def _isolate(self, batch: list[_Waiting], error: Exception) -> None:
        if len(batch) > 1:
            log.warning(
                "a batch of %d events failed (%s); committing them one by one",
                len(batch),
                _brief(error),
            )
            for waiting in batch:
                await self._commit_batch([waiting])
            return
        (waiting,) = batch
        self.stats.poison += 1
        event = waiting.event
        with log_context(training_id=event.training_id, attempt=event.attempt, tenant=event.tenant):
            log.error(
                "cannot append %s %s of training %s: %s",
                event.type,
                event.event_id,
                event.training_id,
                _brief(error),
            )
        if not waiting.done.done():
            waiting.done.set_exception(PoisonEvent(f"{event.type} {event.event_id}: {error}"))


def _measure(events: list[Event]) -> None:
    now = datetime.now(UTC)
    metrics.PROJECTOR_BATCH.observe(len(events))
    metrics.events_appended(events)
    for event in events:
        metrics.EVENTS_FOLDED.labels(type=event.type).inc()
        if event.training_id is not None:
            metrics.PROJECTOR_LAG.observe(max(0.0, (now - event.occurred_at).total_seconds()))
        if event.is_terminal:
            metrics.TRAININGS_FINISHED.labels(status=event.type.lower()).inc()


def _brief(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
