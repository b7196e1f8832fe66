"""Pipeline callbacks → events: the bus trainer's Reporter adapter.

`train_strategy()` calls the Reporter from its worker thread. Each callback builds the event at
once (so `occurred_at` is when it happened) and hands it to `emit`, which in the service is
`loop.call_soon_threadsafe(publisher.submit, event)`: the training thread never waits for the
broker. BatchProgress is throttled here, at the source; PhaseStarted and EpochCompleted never
are. Every event of one attempt carries the same envelope and a `seq` that grows by one per
event, so consumers can order and spot gaps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from libs import metrics
from libs.events.catalog import (
    ArtifactRef,
    BatchProgress,
    Cancelled,
    Completed,
    DeviceInfo,
    EpochCompleted,
    Event,
    Failed,
    ModelRef,
    PhaseStarted,
    Started,
)
from libs.pipeline.jsonable import jsonable
from libs.pipeline.progress import BatchInfo, EpochInfo, Reporter
from libs.pipeline.request import TrainingResult
from libs.pipeline.storage.bundle import PublishedModel
from libs.pipeline.training.checkpoint import Position

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class RunEnvelope:
    """What every event of one training attempt shares."""

    training_id: str
    tenant: str
    source: str  # "trainer:<id>"
    attempt: int  # x-delivery-count + 1
    correlation_id: str | None  # the request's event_id


class EventReporter(Reporter):
    """A Reporter that turns callbacks into events for one attempt."""

    def __init__(
        self,
        envelope: RunEnvelope,
        emit: Callable[[Event], None],
        *,
        batch_interval_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.envelope = envelope
        self._emit = emit
        self._interval = batch_interval_s
        self._clock = clock
        self._seq = 0
        self._lock = threading.Lock()  # terminal events are built on the loop, the rest in a thread
        self._last_batch_at: float | None = None
        self._epoch_started_at = clock()
        self.current_phase: str | None = None
        self.current_epoch: int | None = None
        self.batches_seen = 0
        self.batches_sent = 0

    # --- the Reporter protocol (called from the training thread) -------------------------------
    def phase_started(self, phase: str, index: int, total: int, message: str) -> None:
        self.current_phase = phase
        self._emit(
            self.make(PhaseStarted, phase=phase, index=index, total_phases=total, message=message)
        )

    def batch_progress(self, info: BatchInfo) -> None:
        self.batches_seen += 1
        self.current_epoch = info.epoch
        now = self._clock()
        if info.batch == 1:
            self._epoch_started_at = now
        due = self._last_batch_at is None or now - self._last_batch_at >= self._interval
        # The last batch of an epoch is sent too, so a client's batch bar reaches 100 % instead
        # of stalling at the last throttled value -- when that is cheap: for epochs that outlast
        # the interval (at most one extra event per interval). Shorter epochs are summed up by
        # their EpochCompleted anyway.
        last = info.batch >= info.total_batches and now - self._epoch_started_at >= self._interval
        if not (due or last):
            return
        self._last_batch_at = now
        self.batches_sent += 1
        metrics.TRAINER_SAMPLES_PER_S.set(info.samples_per_s)
        self._emit(
            self.make(
                BatchProgress,
                epoch=info.epoch,
                total_epochs=info.total_epochs,
                batch=info.batch,
                total_batches=info.total_batches,
                running_loss=info.loss,
                running_accuracy=info.accuracy,
                samples_per_s=info.samples_per_s,
                progress=info.progress,
                eta_s=info.eta_s,
            )
        )

    def epoch_completed(self, info: EpochInfo) -> None:
        self.current_epoch = info.epoch
        self._emit(
            self.make(
                EpochCompleted,
                epoch=info.epoch,
                total_epochs=info.total_epochs,
                train_loss=info.train_loss,
                train_accuracy=info.train_accuracy,
                val_loss=info.val_loss,
                val_accuracy=info.val_accuracy,
                learning_rate=info.learning_rate,
                duration_s=info.duration_s,
                best_epoch=info.best_epoch,
            )
        )

    # --- lifecycle events (built on the loop; the caller publishes them) -----------------------
    def started(
        self,
        trainer_id: str,
        host: str,
        device: DeviceInfo,
        resume: Position | None = None,
    ) -> Started:
        return self.make(
            Started,
            trainer_id=trainer_id,
            host=host,
            device=device,
            resume_epoch=resume.epoch if resume else None,
            resume_batch=resume.batch if resume else 0,
        )

    def completed(
        self, result: TrainingResult, published: PublishedModel | None = None
    ) -> Completed:
        """`published`: the model's artifact, whose version is the registry's; None only where
        no artifact store is configured (the trainer's local version then)."""
        saved = result.model
        artifact = None
        if published is not None:
            info = published.artifact
            artifact = ArtifactRef(key=info.key, uri=info.uri, size=info.size, sha256=info.sha256)
        model = ModelRef(
            strategy=saved.strategy,
            timeframe=saved.timeframe,
            version=saved.version if published is None else published.version,
            path=str(saved.path),
            sha256=saved.sha256,
            bytes=saved.bytes,
            artifact=artifact,
            lineage=jsonable({**result.lineage, "tenant": self.envelope.tenant}),
        )
        return self.make(
            Completed,
            model=model,
            training_metrics=jsonable(result.training_metrics),
            test_metrics=jsonable(result.test_metrics),
            duration_s=result.duration_s,
        )

    def failed(self, **payload: Any) -> Failed:
        payload.setdefault("phase", self.current_phase)
        return self.make(Failed, **payload)

    def cancelled(self, phase: str | None, epoch: int | None, reason: str) -> Cancelled:
        return self.make(Cancelled, phase=phase, epoch=epoch, reason=reason)

    def make(self, event_class: type[E], **payload: Any) -> E:
        with self._lock:
            self._seq += 1
            seq = self._seq
        env = self.envelope
        return event_class(
            training_id=env.training_id,
            tenant=env.tenant,
            source=env.source,
            attempt=env.attempt,
            correlation_id=env.correlation_id,
            seq=seq,
            **payload,
        )
