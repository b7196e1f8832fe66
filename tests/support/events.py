"""THE event builder of the tests (and of bench/): realistic events without filling envelopes.

- `TrainingScript` plays one training's events the way the API and a trainer emit them
  (envelope, seq per source, occurred_at one millisecond apart, the pipeline's real PHASES), so
  a test says what happens, not how an envelope is filled in.
- The module-level builders (`requested`, `cancel`, `progress`, `completed`, `failed`,
  `heartbeat`) make one standalone event each, with a fresh training id unless given: for bus,
  relay and trainer tests that only need "some event of this type".
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from libs.events import catalog as ev
from libs.pipeline.progress import PHASES

BASE_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CPU = ev.DeviceInfo(type="cpu", name="x86_64")
_TRAINING = PHASES.index("training")


@dataclass
class TrainingScript:
    training_id: str
    tenant: str = "default"
    strategy: str = "neuro_mean_reversion"
    timeframe: str = "1d"
    clock: datetime = BASE_TIME
    _seq: dict[tuple[str, int], Iterator[int]] = field(default_factory=dict)

    def _envelope(self, source: str, attempt: int) -> dict[str, Any]:
        self.clock += timedelta(milliseconds=1)
        counter = self._seq.setdefault((source, attempt), itertools.count(1))
        return {
            "training_id": self.training_id,
            "tenant": self.tenant,
            "source": source,
            "attempt": attempt,
            "seq": next(counter),
            "occurred_at": self.clock,
        }

    def _trainer(self, trainer: str, attempt: int) -> dict[str, Any]:
        return self._envelope(f"trainer:{trainer}", attempt)

    # --- API -----------------------------------------------------------------------------------

    def requested(self, *, idempotency_key: str | None = None, **kw: Any) -> ev.TrainingRequested:
        fields = {
            "strategy_name": self.strategy,
            "strategy": {"name": self.strategy},
            "symbols": ["AAPL"],
            "timeframes": [self.timeframe],
            "idempotency_key": idempotency_key,
        }
        return ev.TrainingRequested(**self._envelope("api", 0), **(fields | kw))

    def cancel_requested(self, reason: str = "cancelled by user") -> ev.CancelRequested:
        return ev.CancelRequested(**self._envelope("api", 0), reason=reason)

    # --- model registry (api) -------------------------------------------------------------------

    def alias_set(
        self, alias: str = "champion", version: int = 1, previous: int | None = None
    ) -> ev.ModelAliasSet:
        return ev.ModelAliasSet(
            **self._envelope("api", 0),
            alias=alias,
            strategy=self.strategy,
            timeframe=self.timeframe,
            version=version,
            previous_version=previous,
        )

    def alias_removed(self, alias: str = "champion", version: int = 1) -> ev.ModelAliasRemoved:
        return ev.ModelAliasRemoved(
            **self._envelope("api", 0),
            alias=alias,
            strategy=self.strategy,
            timeframe=self.timeframe,
            version=version,
        )

    def model_deleted(self, version: int = 1, reason: str = "") -> ev.ModelDeleted:
        return ev.ModelDeleted(
            **self._envelope("api", 0),
            strategy=self.strategy,
            timeframe=self.timeframe,
            version=version,
            reason=reason,
            requested_by="admin",
        )

    # --- trainer -------------------------------------------------------------------------------

    def started(self, attempt: int = 1, trainer: str = "t1") -> ev.Started:
        return ev.Started(
            **self._trainer(trainer, attempt), trainer_id=trainer, host="host-a", device=CPU
        )

    def phase(
        self, name: str, index: int, attempt: int = 1, trainer: str = "t1"
    ) -> ev.PhaseStarted:
        return ev.PhaseStarted(
            **self._trainer(trainer, attempt), phase=name, index=index, total_phases=len(PHASES)
        )

    def batch(
        self,
        epoch: int,
        batch: int,
        *,
        total_epochs: int = 3,
        total_batches: int = 10,
        attempt: int = 1,
        trainer: str = "t1",
    ) -> ev.BatchProgress:
        done = ((epoch - 1) * total_batches + batch) / (total_epochs * total_batches)
        return ev.BatchProgress(
            **self._trainer(trainer, attempt),
            epoch=epoch,
            total_epochs=total_epochs,
            batch=batch,
            total_batches=total_batches,
            running_loss=1.0 / (1 + done),
            running_accuracy=0.4 + 0.3 * done,
            samples_per_s=5000.0,
            progress=done,
            eta_s=10.0 * (1 - done),
        )

    def epoch_completed(
        self,
        epoch: int,
        val_loss: float,
        *,
        total_epochs: int = 3,
        attempt: int = 1,
        trainer: str = "t1",
    ) -> ev.EpochCompleted:
        return ev.EpochCompleted(
            **self._trainer(trainer, attempt),
            epoch=epoch,
            total_epochs=total_epochs,
            train_loss=val_loss * 0.9,
            train_accuracy=0.6,
            val_loss=val_loss,
            val_accuracy=0.55,
            learning_rate=1e-3,
            duration_s=1.5,
            best_epoch=epoch,
        )

    def completed(
        self,
        version: int = 1,
        attempt: int = 1,
        trainer: str = "t1",
        model: ev.ModelRef | None = None,
    ) -> ev.Completed:
        """`model`: the model it announces (default: a made-up one of `version`)."""
        model = model or ev.ModelRef(
            strategy=self.strategy,
            timeframe=self.timeframe,
            version=version,
            path=f"models/tenants/{self.tenant}/{self.strategy}/{self.timeframe}_v{version}",
            sha256="ab" * 32,
            bytes=12345,
        )
        return ev.Completed(
            **self._trainer(trainer, attempt),
            model=model,
            training_metrics={"best_epoch": 2},
            test_metrics={"accuracy": 0.61},
            duration_s=12.5,
        )

    def failed(self, attempt: int = 1, trainer: str = "t1", **kw: Any) -> ev.Failed:
        fields = {"error_type": "ValueError", "message": "boom", "phase": "training"}
        return ev.Failed(**self._trainer(trainer, attempt), **(fields | kw))

    def cancelled(
        self, attempt: int = 1, trainer: str = "t1", phase: str | None = None
    ) -> ev.Cancelled:
        return ev.Cancelled(**self._trainer(trainer, attempt), phase=phase)

    def heartbeat(
        self, trainer: str = "t1", running: list[str] | None = None
    ) -> ev.TrainerHeartbeat:
        envelope = self._trainer(trainer, 0) | {"training_id": None}
        return ev.TrainerHeartbeat(
            **envelope, trainer_id=trainer, host="host-a", device=CPU, running=running or []
        )

    # --- whole runs ----------------------------------------------------------------------------

    def run(
        self,
        *,
        epochs: int = 3,
        batches: int = 10,
        attempt: int = 1,
        trainer: str = "t1",
        outcome: str = "completed",
        version: int = 1,
    ) -> list[ev.Event]:
        """A trainer's full attempt: Started, the phases, batches, epochs, then the outcome
        ("completed", "failed", "cancelled" or "none" for a run still going)."""
        out: list[ev.Event] = [self.started(attempt, trainer)]
        phases = PHASES[: _TRAINING + 1]
        out += [self.phase(name, i, attempt, trainer) for i, name in enumerate(phases)]
        for epoch in range(1, epochs + 1):
            for batch in range(1, batches + 1):
                out.append(
                    self.batch(
                        epoch,
                        batch,
                        total_epochs=epochs,
                        total_batches=batches,
                        attempt=attempt,
                        trainer=trainer,
                    )
                )
            # val_loss dips in the middle, so "best" is not simply the last epoch
            val_loss = 1.0 / epoch if epoch <= (epochs + 1) // 2 else 0.9
            out.append(
                self.epoch_completed(
                    epoch, val_loss, total_epochs=epochs, attempt=attempt, trainer=trainer
                )
            )
        if outcome == "completed":
            later = enumerate(PHASES[_TRAINING + 1 :], start=_TRAINING + 1)
            out += [self.phase(name, i, attempt, trainer) for i, name in later]
            out.append(self.completed(version, attempt, trainer))
        elif outcome == "failed":
            out.append(self.failed(attempt, trainer))
        elif outcome == "cancelled":
            out.append(self.cancelled(attempt, trainer, phase="training"))
        elif outcome != "none":
            raise ValueError(
                f"outcome {outcome!r} is not one of completed, failed, cancelled, none"
            )
        return out


# --- standalone events ---------------------------------------------------------------------------


def training_id() -> str:
    return f"tr-{uuid.uuid4().hex[:12]}"


def requested(
    device: ev.DeviceClass = "any", tid: str | None = None, **kw: Any
) -> ev.TrainingRequested:
    """`kw` overrides any field (e.g. start_date, seed)."""
    fields = {
        "strategy_name": "neuro_mean_reversion",
        "strategy": {"name": "neuro_mean_reversion"},
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "device": device,
    }
    return ev.TrainingRequested(training_id=tid or training_id(), source="api", **(fields | kw))


def cancel(tid: str | None = None, reason: str | None = None) -> ev.CancelRequested:
    extra = {} if reason is None else {"reason": reason}
    return ev.CancelRequested(training_id=tid or training_id(), source="api", **extra)


def progress(tid: str | None = None, batch: int = 1) -> ev.BatchProgress:
    return ev.BatchProgress(
        training_id=tid or training_id(),
        source="trainer:t1",
        attempt=1,
        epoch=1,
        total_epochs=2,
        batch=batch,
        total_batches=10,
        running_loss=0.5,
        running_accuracy=0.6,
        samples_per_s=1000.0,
        progress=0.1,
    )


def completed(tid: str | None = None, source: str = "trainer:t1", attempt: int = 1) -> ev.Completed:
    return ev.Completed(
        training_id=tid or training_id(),
        source=source,
        attempt=attempt,
        model=ev.ModelRef(
            strategy="s",
            timeframe="1h",
            version=1,
            path="models/tenants/default/s/1h_v1",
            sha256="0" * 64,
            bytes=10,
        ),
        duration_s=1.0,
    )


def failed(tid: str | None = None, source: str = "projector", **kw: Any) -> ev.Failed:
    """A Failed the projector records (a dead-lettered request), unless `source` says otherwise;
    `kw` overrides any field."""
    fields = {"error_type": "DeadLettered", "message": "x"}
    return ev.Failed(training_id=tid or training_id(), source=source, **(fields | kw))


def heartbeat() -> ev.TrainerHeartbeat:
    return ev.TrainerHeartbeat(
        source="trainer:t1", trainer_id="t1", host="h", device=ev.DeviceInfo(type="cpu", name="cpu")
    )
