"""One attempt of a training, run: Started, `train_strategy()` in a worker thread, then the
terminal event its outcome calls for -- Completed, Failed or Cancelled -- or GiveBack when this
attempt must publish none (shutdown, a lost delivery): the request goes back to the queue.

The pipeline runs in the executor's thread; the asyncio loop stays free for AMQP heartbeats and
for the control reader that cancels the run's token.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from libs.artifacts.port import ArtifactStore
from libs.events.bus.port import HandBack
from libs.events.catalog import DeviceInfo, Event, TrainingRequested
from libs.pipeline.progress import TrainingCancelled
from libs.pipeline.request import TrainingRequest, TrainingResult
from libs.pipeline.storage.bundle import PublishedModel, publish_model
from libs.pipeline.storage.layout import tenant_models_dir
from services.trainer.cancellation import RunToken, StopReason
from services.trainer.checkpoints import ArtifactCheckpoints
from services.trainer.errors import check_dates, describe_failure
from services.trainer.publisher import OrderedPublisher
from services.trainer.reporter import EventReporter

log = logging.getLogger("ktrdr.trainer.worker")  # the same logger as the worker it serves

# train_strategy(request, reporter, token, checkpoints=sink)
TrainFn = Callable[..., TrainingResult]


class GiveBack(HandBack):
    """Raised out of the handler so the bus requeues the request for another attempt."""


class HandOver(Exception):
    """The run reached its lease and checkpointed: the worker publishes a fresh copy of the
    request (the next attempt continues from the checkpoint) and acks this delivery."""


@dataclass(frozen=True)
class TrainerIdentity:
    trainer_id: str
    host: str
    device: DeviceInfo  # from DeviceManager.capabilities()

    @property
    def source(self) -> str:
        return f"trainer:{self.trainer_id}"


@dataclass(frozen=True)
class WorkerConfig:
    models_dir: Path
    data_dir: Path
    lease_s: float | None  # None: no lease (the in-process bus has no delivery-ack timeout)
    batch_progress_interval_s: float
    artifacts: ArtifactStore
    checkpoint_interval_s: float | None = 300.0  # None: at epoch ends only
    checkpoint_keep: int = 3

    def checkpoints(self, tenant: str, training_id: str) -> ArtifactCheckpoints:
        return ArtifactCheckpoints(
            self.artifacts,
            tenant,
            training_id,
            keep=self.checkpoint_keep,
            interval_s=self.checkpoint_interval_s,
        )


class AttemptRunner:
    def __init__(
        self,
        identity: TrainerIdentity,
        config: WorkerConfig,
        *,
        publisher: OrderedPublisher,
        stopping: asyncio.Event,
        executor: Executor,
        train_fn: TrainFn,
    ) -> None:
        self.identity = identity
        self.config = config
        self._publisher = publisher
        self._stopping = stopping
        self._executor = executor
        self._train_fn = train_fn

    async def run(
        self,
        request: TrainingRequested,
        reporter: EventReporter,
        token: RunToken,
        checkpoints: ArtifactCheckpoints,
    ) -> Event:
        """Publish Started (saying where the run resumes, if a checkpoint of an earlier attempt
        exists), train, and return the terminal event (the caller publishes it with confirms).
        Raises GiveBack when this attempt must not publish one."""
        identity = self.identity
        loop = asyncio.get_running_loop()
        resume = await loop.run_in_executor(self._executor, checkpoints.resume_point)
        position = resume[0] if resume else None
        self._publisher.submit(
            reporter.started(identity.trainer_id, identity.host, identity.device, position)
        )
        log.info(
            "training %s attempt %d started%s",
            request.training_id,
            reporter.envelope.attempt,
            f" from epoch {position.epoch} batch {position.batch}" if position else "",
        )
        try:
            training_request = self._training_request(request)
            result = await self._in_thread(training_request, reporter, token, checkpoints)
            published = await self._publish(request, result)
        except TrainingCancelled as stop:
            return self._stopped(reporter, token, stop)
        except Exception as error:
            info = describe_failure(error)
            log.warning(
                "training %s failed: %s: %s", request.training_id, info.error_type, info.message
            )
            return reporter.failed(
                error_type=info.error_type,
                message=info.message,
                retryable=info.retryable,
                traceback=info.traceback,
            )
        log.info(
            "training %s completed: %s%s",
            request.training_id,
            result.model.path,
            f", published as {published.artifact.uri}",
        )
        return reporter.completed(result, published)

    async def _publish(self, request: TrainingRequested, result: TrainingResult) -> PublishedModel:
        """Upload the saved model to the artifact store and check what it holds, before any
        Completed announces it: a model is listed only once its bytes are stored and verified.
        Runs in the executor (file and network I/O)."""
        store = self.config.artifacts
        saved = result.model
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor,
            functools.partial(
                publish_model,
                store,
                saved.path,
                tenant=request.tenant,
                strategy=saved.strategy,
                timeframe=saved.timeframe,
            ),
        )

    async def _in_thread(
        self,
        request: TrainingRequest,
        reporter: EventReporter,
        token: RunToken,
        checkpoints: ArtifactCheckpoints,
    ) -> TrainingResult:
        loop = asyncio.get_running_loop()
        train = functools.partial(_train_then_flush, self._train_fn, checkpoints)
        # In this task's context: the training thread's log lines carry the training's fields.
        context = contextvars.copy_context()
        future = loop.run_in_executor(self._executor, context.run, train, request, reporter, token)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # The bus cancelled the handler: the shutdown grace is over, or the channel that
            # delivered the request closed (aiormq cancels its delivery tasks) -- e.g. the
            # broker's delivery-ack timeout or a lost connection. Either way the request goes
            # (or went) back to the queue: stop this run within one batch before letting go.
            envelope = reporter.envelope
            if self._stopping.is_set():
                token.cancel(StopReason.SHUTDOWN, "shutdown grace over")
                log.info("%s attempt %d: giving it back", envelope.training_id, envelope.attempt)
            else:
                token.cancel(StopReason.DELIVERY_LOST, "the request's channel closed")
                log.warning(
                    "%s: delivery of attempt %d was taken back by the broker (channel closed); "
                    "stopping its run, the redelivery runs instead",
                    envelope.training_id,
                    envelope.attempt,
                )
            await asyncio.wait({future})
            if not future.cancelled() and future.exception() is not None:
                log.info("the stopped run ended with %r", future.exception())
            raise

    def _stopped(self, reporter: EventReporter, token: RunToken, stop: TrainingCancelled) -> Event:
        reason = token.reason
        if reason is StopReason.USER:
            return reporter.cancelled(stop.phase, stop.epoch, token.detail or "cancelled")
        if reason is StopReason.LEASE:
            raise HandOver(
                f"{reporter.envelope.training_id}: attempt {reporter.envelope.attempt} held its "
                f"delivery for lease_s={self.config.lease_s:g}s; handing over at epoch "
                f"{stop.epoch}"
            )
        # Shutdown, a lost delivery or another attempt's result: this attempt publishes no
        # terminal event; the request goes back (or is already back) to the queue.
        raise GiveBack(f"{reporter.envelope.training_id}: stopped ({reason}: {token.detail})")

    def _training_request(self, request: TrainingRequested) -> TrainingRequest:
        check_dates(request.start_date, request.end_date)
        return TrainingRequest(
            strategy=dict(request.strategy),
            data_dir=self.config.data_dir,
            # The tenant's own tree: its own version numbers, never another tenant's folder.
            models_dir=tenant_models_dir(self.config.models_dir, request.tenant),
            symbols=list(request.symbols) or None,
            timeframes=list(request.timeframes) or None,
            start_date=request.start_date,
            end_date=request.end_date,
            overrides=dict(request.overrides),
            seed=request.seed,
            device=self.identity.device.type,
            training_id=request.training_id,
        )


def _train_then_flush(
    train_fn: TrainFn,
    checkpoints: ArtifactCheckpoints,
    request: TrainingRequest,
    reporter: EventReporter,
    token: RunToken,
) -> TrainingResult:
    """The run, then its last checkpoint stored: whatever comes next (a terminal event, a
    hand-over, a give-back) may count on the newest checkpoint being in the store."""
    try:
        return train_fn(request, reporter, token, checkpoints=checkpoints)
    finally:
        checkpoints.close()
