"""One request, from delivery to the terminal event: the heart of the bus trainer.

`TrainingWorker.handle` is the request queues' handler. The bus acks the request when it
returns and requeues it when it raises (libs/events/bus/policy.py), so the rules are:

* return only after the terminal event is confirmed (or when there is nothing to run: a
  training already finished, or not a request at all);
* raise (→ requeue) when this trainer gives the request back without finishing it: shutdown
  grace expired, or the control stream could not be read -- never guess about cancellations;
* bad input is not a reason to raise: it is a Failed event (retryable=False), then ack.

The run itself (Started, the pipeline in a worker thread, the terminal event) is in attempt.py;
the pipeline's events reach the loop through `emit` without the thread ever waiting for the
broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from libs import metrics
from libs.events.bus.port import Delivery
from libs.events.catalog import Event, TrainingRequested
from libs.logs import log_context
from services.trainer.attempt import (
    AttemptRunner,
    GiveBack,
    HandOver,
    TrainerIdentity,
    TrainFn,
    WorkerConfig,
)
from services.trainer.cancellation import ControlState, RunToken, StopReason
from services.trainer.checkpoints import ArtifactCheckpoints
from services.trainer.publisher import OrderedPublisher
from services.trainer.reporter import EventReporter, RunEnvelope

__all__ = ["GiveBack", "TrainerIdentity", "TrainFn", "TrainingWorker", "WorkerConfig"]

log = logging.getLogger("ktrdr.trainer.worker")


@dataclass
class _Active:
    """A request of one training being handled here (waiting for a slot, or running)."""

    attempt: int
    token: RunToken | None = None
    lost: bool = False  # a newer delivery of the same request arrived: this one is void
    done: asyncio.Event = field(default_factory=asyncio.Event)


class TrainingWorker:
    def __init__(
        self,
        identity: TrainerIdentity,
        config: WorkerConfig,
        *,
        publisher: OrderedPublisher,
        control: ControlState,
        sync_control: Callable[[], Awaitable[None]],
        slots: asyncio.Semaphore,
        stopping: asyncio.Event,
        executor: Executor,
        train_fn: TrainFn,
    ) -> None:
        self.identity = identity
        self.config = config
        self._publisher = publisher
        self._control = control
        # Run before deciding on each request: returns once every control event published
        # before the call has been applied. A public hook, so a test can observe or fail it.
        self.sync_control = sync_control
        self._slots = slots
        self._stopping = stopping
        self._runner = AttemptRunner(
            identity,
            config,
            publisher=publisher,
            stopping=stopping,
            executor=executor,
            train_fn=train_fn,
        )
        self._active: dict[str, _Active] = {}

    @property
    def active(self) -> Mapping[str, int]:
        """The trainings this worker is handling (waiting for a slot or running) and the
        attempt of each; a read-only view."""
        return MappingProxyType({tid: active.attempt for tid, active in self._active.items()})

    async def handle(self, delivery: Delivery) -> None:
        request = delivery.event
        if not isinstance(request, TrainingRequested) or request.training_id is None:
            log.error(
                "ignoring %s %s on %s: not a TrainingRequested with a training_id",
                request.type,
                request.event_id,
                delivery.queue,
            )
            return
        # The broker's consumer_timeout counts from delivery, so the lease does too.
        lease = self.config.lease_s
        deadline = None if lease is None else time.monotonic() + lease
        # A request's envelope attempt is the attempt it continues after (0 from the API; n
        # on the copy an attempt n hands over, or `ktrdr up` republishes after a restart).
        training_id = request.training_id
        attempt = max(delivery.delivery_count, request.attempt) + 1
        with log_context(
            training_id=training_id,
            attempt=attempt,
            trainer_id=self.identity.trainer_id,
            tenant=request.tenant,
        ):
            await self._handle(request, training_id, attempt, deadline)

    async def _handle(
        self, request: TrainingRequested, training_id: str, attempt: int, deadline: float | None
    ) -> None:
        await self._wait_for_earlier_delivery(training_id, attempt)
        active = _Active(attempt)
        self._active[training_id] = active  # no await since the wait: nobody slipped in
        try:
            await self._acquire_slot(request)
            busy = metrics.TRAINER_BUSY.labels(device=self.identity.device.type)
            busy.inc()
            try:
                await self._handle_in_slot(request, active, deadline)
            finally:
                busy.dec()
                self._slots.release()
        finally:
            if self._active.get(training_id) is active:
                del self._active[training_id]
            active.done.set()

    async def _wait_for_earlier_delivery(self, training_id: str, attempt: int) -> None:
        """One handler per training at a time in this trainer.

        The broker redelivers a request only once the delivery before it is gone (its channel
        closed, e.g. by the delivery-ack timeout): if that earlier delivery is still being
        handled here, its run is stopped at once -- its ack could never land, and only the
        newer attempt must go on. A same-attempt duplicate (the relay publishes at least once)
        just waits; it finds the training finished and is acked without running.
        """
        while (earlier := self._active.get(training_id)) is not None:
            if earlier.attempt < attempt:
                earlier.lost = True
                detail = f"its request was redelivered as attempt {attempt}"
                # A run that handed over (its lease was up) is stopping already: its copy is
                # this delivery, nothing was taken back.
                if earlier.token is None or earlier.token.cancel(StopReason.DELIVERY_LOST, detail):
                    log.warning(
                        "%s: delivery of attempt %d was taken back by the broker; stopping it",
                        training_id,
                        earlier.attempt,
                    )
            await earlier.done.wait()

    async def _acquire_slot(self, request: TrainingRequested) -> None:
        # Two consumers (any + own device) with prefetch = concurrency may hand us more
        # requests than slots; the extra one waits here, and goes back if we are shutting down.
        acquire = asyncio.ensure_future(self._slots.acquire())
        stop = asyncio.ensure_future(self._stopping.wait())
        acquired = False
        try:
            await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
            acquired = acquire.done() and not acquire.cancelled()
        finally:
            stop.cancel()
            if not acquired:
                acquire.cancel()  # Semaphore.acquire gives a slot back if cancelled after a wake-up
        if self._stopping.is_set():
            if acquired:
                self._slots.release()
            raise GiveBack(f"shutting down; giving back {request.training_id}")

    async def _handle_in_slot(
        self, request: TrainingRequested, active: _Active, deadline: float | None
    ) -> None:
        training_id, attempt = request.training_id, active.attempt
        assert training_id is not None
        try:
            await self.sync_control()
        except Exception as error:
            raise GiveBack(f"control stream not readable ({error}); not deciding blind") from error

        reporter = EventReporter(
            RunEnvelope(
                training_id=training_id,
                tenant=request.tenant,
                source=self.identity.source,
                attempt=attempt,
                correlation_id=str(request.event_id),
            ),
            self._emit_threadsafe(),
            batch_interval_s=self.config.batch_progress_interval_s,
        )
        finished = self._control.terminal_type(training_id)
        if finished is not None:
            log.info(
                "%s already %s; acking attempt %d without running", training_id, finished, attempt
            )
            return
        cancel_reason = self._control.cancel_reason(training_id)
        if cancel_reason is not None:
            log.info("%s was cancelled while queued; not running it", training_id)
            await self._publisher.publish(reporter.cancelled(None, None, cancel_reason))
            return

        if active.lost:
            raise GiveBack(f"{training_id}: attempt {attempt} superseded by a redelivery")
        token = active.token = RunToken(
            deadline=deadline,
            can_hand_over=lambda: (
                reporter.current_phase == "training" and reporter.batches_seen > 0
            ),
        )
        # No await between the checks above and this registration: a CancelRequested the
        # control reader applies from now on reaches the token.
        self._control.register(
            training_id,
            token,
            source=self.identity.source,
            attempt=attempt,
            batches=lambda: reporter.batches_seen,
        )
        checkpoints = self.config.checkpoints(request.tenant, training_id)
        try:
            terminal = await self._runner.run(request, reporter, token, checkpoints)
        except HandOver as handover:
            # Confirmed before this delivery is acked: the request is never without a copy.
            await self._publisher.publish(request.model_copy(update={"attempt": attempt}))
            log.info("%s", handover)
            return
        finally:
            self._control.unregister(training_id, token)
        await self._publisher.publish(terminal)
        # Only once the outcome is confirmed: a crash before this still resumes from them.
        await self._discard(checkpoints)

    async def _discard(self, checkpoints: ArtifactCheckpoints) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, checkpoints.discard)
        except Exception as error:  # a leftover costs disk space, never correctness
            log.warning("checkpoints under %s not deleted: %s", checkpoints.prefix, error)

    def _emit_threadsafe(self) -> Callable[[Event], Any]:
        loop = asyncio.get_running_loop()
        submit = self._publisher.submit
        return lambda event: loop.call_soon_threadsafe(submit, event)
