"""TrainerService: the bus trainer, embeddable in any asyncio process.

    service = TrainerService(settings, bus)   # bus: any EventBus (RabbitMQ or in-memory)
    await service.start()                     # boot: control stream caught up, then consume
    ...
    await service.stop()                      # graceful: finish or give back within the grace

`ktrdr trainer` wraps it with signal handling (services/trainer/main.py); `ktrdr up` starts one
beside the API and the projector on the in-memory bus. The service starts the bus (idempotent)
but never closes it: whoever built the bus owns it.

Boot order matters: the control stream is read from the start and caught up BEFORE the request
queues are consumed, so a training cancelled (or finished) before this trainer existed is never
run by it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent.futures import ThreadPoolExecutor

from libs import metrics
from libs.artifacts.port import ArtifactStore
from libs.events.bus.port import Delivery, EventBus, Subscription
from libs.events.catalog import DeviceInfo, TrainerHeartbeat
from libs.pipeline.storage.bundle import clean_crashed_saves
from services.bootstrap import open_artifacts
from services.trainer.cancellation import ControlState, StopReason
from services.trainer.heartbeat import Heartbeat
from services.trainer.publisher import OrderedPublisher
from services.trainer.settings import TrainerSettings
from services.trainer.worker import TrainerIdentity, TrainFn, TrainingWorker, WorkerConfig

log = logging.getLogger("ktrdr.trainer")


def _resolve_device(requested: str) -> DeviceInfo:
    from libs.pipeline.device import DeviceManager  # torch: imported by the composition only

    return DeviceInfo(**DeviceManager.resolve(requested).capabilities())


def _default_train_fn() -> TrainFn:
    from libs.pipeline.pipeline import train_strategy

    return train_strategy


class TrainerService:
    def __init__(
        self,
        settings: TrainerSettings,
        bus: EventBus,
        *,
        train_fn: TrainFn | None = None,
        device: DeviceInfo | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self._artifacts = artifacts  # None: the store KTRDR_ARTIFACTS_URL names
        self._train_fn = train_fn
        self._device = device
        self._control = ControlState(settings.control_memory)
        self.publisher = OrderedPublisher(bus, retry_s=settings.publish_retry_s)
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._control_sub: Subscription | None = None
        self._request_subs: list[Subscription] = []
        self._executor: ThreadPoolExecutor | None = None
        self._heartbeat: Heartbeat | None = None
        self.identity: TrainerIdentity | None = None
        self.worker: TrainingWorker | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        settings = self.settings
        device = self._device or _resolve_device(settings.device)
        train_fn = self._train_fn or _default_train_fn()
        self.identity = TrainerIdentity(settings.trainer_id, socket.gethostname(), device)
        metrics.TRAINER_SLOTS.labels(device=device.type).set(settings.concurrency)
        await self.bus.start()
        self.publisher.start()

        self._control_sub = await self.bus.consume_control(self._on_control, from_start=True)
        async with asyncio.timeout(settings.control_sync_timeout_s):
            await self._control_sub.caught_up.wait()
        log.info("control stream caught up (%d events)", self._control.applied)

        self._executor = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="training")
        artifacts = self._artifacts or open_artifacts(settings)
        # Leftovers of saves and uploads that crashed (an hour old: none still in progress).
        removed = await asyncio.get_running_loop().run_in_executor(
            self._executor, clean_crashed_saves, artifacts, settings.models_dir
        )
        if removed:
            log.info("removed %d leftovers of crashed saves", removed)
        self.worker = TrainingWorker(
            self.identity,
            WorkerConfig(
                models_dir=settings.models_dir,
                data_dir=settings.data_dir,
                lease_s=settings.lease_s,
                batch_progress_interval_s=settings.batch_progress_interval_s,
                artifacts=artifacts,
                checkpoint_interval_s=settings.checkpoint_interval_s or None,
                checkpoint_keep=settings.checkpoint_keep,
            ),
            publisher=self.publisher,
            control=self._control,
            sync_control=self._sync_control,
            slots=asyncio.Semaphore(settings.concurrency),
            stopping=self._stopping,
            executor=self._executor,
            train_fn=train_fn,
        )
        self._heartbeat = Heartbeat(
            self.bus,
            self.identity,
            concurrency=settings.concurrency,
            running=self._control.running_ids,
            interval_s=settings.heartbeat_interval_s,
        )
        for queue in self.bus.topology.queues_for_trainer(device.type):
            subscription = await self.bus.consume(
                queue, self.worker.handle, prefetch=settings.concurrency
            )
            self._request_subs.append(subscription)
        self._heartbeat.start()  # the first heartbeat says "consuming" to whoever waits for it
        log.info(
            "trainer %s serving %s on %s (%s), concurrency %d",
            settings.trainer_id,
            ", ".join(s.queue for s in self._request_subs),
            device.type,
            device.name,
            settings.concurrency,
        )

    async def run(self) -> None:
        """Start, then serve until `stop()` has finished."""
        await self.start()
        await self._stopped.wait()

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking work; let running trainings finish within the grace, then give them
        back (their requests are requeued, unacked, for another trainer). Idempotent."""
        if self._stopping.is_set():
            await self._stopped.wait()
            return
        self._stopping.set()
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        log.info("stopping: %d running, grace %.0fs", len(self._control.running_ids()), grace)
        try:
            # Handlers still running after the grace are cancelled by stop(); the worker then
            # stops its run within one batch and the bus requeues the request.
            await asyncio.gather(*(s.stop(grace_s=grace) for s in self._request_subs))
            self._control.cancel_all(StopReason.SHUTDOWN, "trainer stopping")
            if self._heartbeat is not None:
                await self._heartbeat.stop()
            if self._control_sub is not None:
                await self._control_sub.stop(grace_s=1.0)
            await self.publisher.stop()
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
        finally:
            self._stopped.set()
            log.info("trainer %s stopped", self.settings.trainer_id)

    def stop_now(self, why: str) -> None:
        """Give every running training back at once, without waiting for the grace (a second
        SIGTERM): each run stops within one batch and its request goes back to the queue."""
        self._control.cancel_all(StopReason.SHUTDOWN, why)

    # --- read-only views ----------------------------------------------------------------------
    def running_ids(self) -> list[str]:
        """The trainings running on this trainer now."""
        return self._control.running_ids()

    def cancel_reason(self, training_id: str) -> str | None:
        """Why a cancel of `training_id` was requested, as far as the control stream has been
        read (None: no cancel seen)."""
        return self._control.cancel_reason(training_id)

    def heartbeat(self) -> TrainerHeartbeat:
        """The heartbeat this trainer would publish now (once started)."""
        if self._heartbeat is None:
            raise RuntimeError("the trainer is not started")
        return self._heartbeat.beat()

    # --- control stream ------------------------------------------------------------------------
    async def _on_control(self, delivery: Delivery) -> None:
        stopped = self._control.apply(delivery.event)
        if stopped is not None:
            # Ops (and the integration tests) read the batch count to check "within one batch".
            log.info(
                "%s applied to %s attempt %d after %d batches",
                delivery.event.type,
                delivery.event.training_id,
                stopped.attempt,
                stopped.batches(),
            )

    async def _sync_control(self) -> None:
        """Make sure every control event published before now has been applied.

        A CancelRequested published just before a request was dequeued may still be on its way
        to the live reader: `sync()` appends a bookmark to the stream and returns once the live
        reader has read it back. For a bus without it, a second reader from the start with its
        own bookmark proves the same, at a cost that grows with the stream.
        """
        timeout = self.settings.control_sync_timeout_s
        assert self._control_sub is not None
        try:
            async with asyncio.timeout(timeout):
                await self._control_sub.sync()
            return
        except NotImplementedError:
            pass
        probe = await self.bus.consume_control(self._on_control, from_start=True)
        try:
            async with asyncio.timeout(timeout):
                await probe.caught_up.wait()
        finally:
            await probe.stop(grace_s=1.0)
