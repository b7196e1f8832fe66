"""ProjectorService: the bus → event log + read models consumer, embeddable in any asyncio process.

    service = ProjectorService(settings, store, bus, probe=stack.ping_database)
    await service.start()      # consume ktrdr.projector and ktrdr.projector.dead_requests
    ...
    await service.stop()       # stop consuming; in-flight batches commit or go back unacked

`ktrdr projector` wraps it with the composition root's store and bus and with signal
handling (`serve`); `ktrdr up` runs one beside the API and a trainer. The service starts the bus
(idempotent) but never closes it, nor the store: whoever built them owns them.

`ktrdr.projector` is a single-active-consumer queue: run several projectors and one consumes
while the others stand by, so events are folded in the order the broker holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from libs.events.bus import is_in_process
from libs.events.bus.port import EventBus, Subscription
from libs.events.store.port import EventStore
from libs.logs import configure_logging
from libs.metrics import serve_metrics
from services.bootstrap import backoff_delay
from services.projector.admission import Admission
from services.projector.consumer import Backoff, GroupCommitter
from services.projector.dead_letters import DeadLetterHandler
from services.projector.outage import Probe
from services.projector.settings import ProjectorSettings

log = logging.getLogger("ktrdr.projector")

DEAD_REQUESTS_PREFETCH = 16


class ProjectorService:
    """`probe` answers "is the database up?" (raises if not): an append that fails while it
    answers is blamed on the events, otherwise it is retried (see outage.py)."""

    def __init__(
        self, settings: ProjectorSettings, store: EventStore, bus: EventBus, *, probe: Probe
    ) -> None:
        self.settings, self.store, self.bus = settings, store, bus
        self.committer = GroupCommitter(
            store.append,
            probe,
            max_batch=settings.projector_batch_max,
            linger_s=settings.projector_linger_ms / 1000,
            backoff=Backoff(settings.projector_retry_min_s, settings.projector_retry_max_s),
            admission=Admission(store, probe),
        )
        self.dead_letters = DeadLetterHandler(
            self.committer.submit_many, self._is_over, bus.topology
        )
        self._subscriptions: list[Subscription] = []
        self._running = False

    async def start(self) -> None:
        self._running = True
        await self.bus.start()
        self.committer.start()
        topology = self.bus.topology
        self._subscriptions = [
            await self.bus.consume(
                topology.projector_queue,
                self.committer.handle,
                prefetch=self.settings.projector_prefetch,
            ),
            await self.bus.consume(
                topology.projector_dead_requests_queue,
                self.dead_letters.handle,
                prefetch=DEAD_REQUESTS_PREFETCH,
            ),
        ]
        log.info(
            "projector consuming %s (batches of up to %d) and %s",
            topology.projector_queue,
            self.settings.projector_batch_max,
            topology.projector_dead_requests_queue,
        )

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking deliveries; give in-flight batches `grace_s` to commit (their handlers
        then return and the messages are acked); whatever is left goes back to the queue."""
        if not self._running:
            return
        self._running = False
        grace = self.settings.projector_shutdown_grace_s if grace_s is None else grace_s
        subscriptions, self._subscriptions = self._subscriptions, []
        await asyncio.gather(*(s.stop(grace_s=grace) for s in subscriptions))
        await self.committer.stop()
        stats = self.committer.stats
        log.info(
            "projector stopped: %d events in %d commits (largest %d), %d retries, %d poison",
            stats.events,
            stats.batches,
            stats.largest_batch,
            stats.retries,
            stats.poison,
        )

    async def _is_over(self, training_id: str) -> bool | None:
        """None when the log does not know the training (an outage raises: the dead letter is
        requeued and tried again)."""
        state = await self.store.get_training(training_id)
        return None if state is None else state.is_terminal


# --- `ktrdr projector` ---------------------------------------------------------------------------


def run_projector(settings: ProjectorSettings) -> int:
    configure_logging(settings)
    serve_metrics(settings.metrics_port)
    return asyncio.run(serve(settings))


async def serve(settings: ProjectorSettings, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or `stop` is set). `ktrdr projector`'s process: the
    composition root's store and bus, no notifier -- on Postgres the store NOTIFYs inside
    its transaction, which reaches every API process at commit; nobody here waits for commits."""
    from services.bootstrap import open_stack

    if is_in_process(settings.broker_url):
        log.warning(
            "KTRDR_BROKER_URL is not set: this projector uses an in-process bus and will "
            "only see events published inside this process (use `ktrdr up`, or amqp://)"
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_stack(database=settings, broker=settings, notifier=False) as stack:
        if not await _until_ready(stack.ping_database, stack.bus, stop):
            return 0
        schema = await stack.schema_status()
        if schema is not None and not schema.at_head:
            log.error(
                "the database schema is not at the latest migration (%s; with the same "
                "KTRDR_DATABASE_URL)",
                schema,
            )
            return 2
        service = ProjectorService(settings, stack.store, stack.bus, probe=stack.ping_database)
        await service.start()
        await stop.wait()
        log.info("stopping")
        await service.stop()
    return 0


async def _until_ready(probe: Probe, bus: EventBus, stop: asyncio.Event) -> bool:
    """Wait for the database and the broker, retrying with backoff; False if asked to stop."""
    for name, check in (("database", probe), ("broker", bus.start)):
        attempt = 0
        while not stop.is_set():
            try:
                await check()
                break
            except Exception as error:  # noqa: BLE001 - keep trying: it may be starting up
                delay = backoff_delay(attempt)
                log.warning("%s not reachable (%s); retrying in %.1fs", name, error, delay)
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
    return not stop.is_set()
