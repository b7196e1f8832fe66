"""One publisher task: events leave in the order they were submitted, with broker confirms.

Training threads submit through `loop.call_soon_threadsafe(publisher.submit, event)` and never
wait; the loop-side task drains the queue in batches (`publish_many` returns once the broker
confirmed them all). `publish()` additionally waits for one event's confirm -- the terminal
event, which must be confirmed before the request is acked. A failed batch is retried as a
whole until it is confirmed: a lost confirm may mean the broker has some of it already, which
is fine because consumers dedupe by event_id; losing a progress event is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from libs.events.bus.port import EventBus
from libs.events.catalog import Event

log = logging.getLogger("ktrdr.trainer.publisher")

_Item = tuple[Event, "asyncio.Future[None] | None"]


class PublisherStopped(RuntimeError):
    """The publisher stopped before the event was confirmed."""


class OrderedPublisher:
    def __init__(self, bus: EventBus, *, retry_s: float = 0.5, max_batch: int = 256) -> None:
        self._bus = bus
        self._retry_s = retry_s
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="publisher")

    def submit(self, event: Event) -> None:
        """Queue `event` (loop thread only); returns at once."""
        self._queue.put_nowait((event, None))

    async def publish(self, event: Event) -> None:
        """Queue `event` behind everything submitted before and wait for its confirm."""
        if self._task is None or self._task.done():
            raise PublisherStopped("the publisher is not running")
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, confirmed))
        await confirmed

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Publish what is queued (up to `timeout_s`), then stop; unconfirmed waiters fail."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        while not self._queue.empty():
            event, waiter = self._queue.get_nowait()
            log.warning("dropping unpublished %s of %s at shutdown", event.type, event.training_id)
            if waiter is not None and not waiter.done():
                waiter.set_exception(PublisherStopped(f"{event.type} was not confirmed"))
            self._queue.task_done()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._publish_until_confirmed([event for event, _ in batch])
            except asyncio.CancelledError:
                for _, waiter in batch:
                    if waiter is not None and not waiter.done():
                        waiter.set_exception(PublisherStopped("publisher stopped"))
                    self._queue.task_done()
                raise
            self.published += len(batch)
            for _, waiter in batch:
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                self._queue.task_done()

    async def _publish_until_confirmed(self, events: list[Event]) -> None:
        failures = 0
        while True:
            try:
                await self._bus.publish_many(events)
                if failures:
                    log.info("publishing recovered after %d failed attempts", failures)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning(
                        "publishing %d events failed (%s: %s); retrying every %.1fs",
                        len(events),
                        type(error).__name__,
                        error,
                        self._retry_s,
                    )
                await asyncio.sleep(self._retry_s)
