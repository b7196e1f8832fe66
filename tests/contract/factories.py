"""Small event builders shared by the bus and relay tests."""

from __future__ import annotations

import uuid

from libs.events.catalog import (
    BatchProgress,
    CancelRequested,
    Completed,
    DeviceInfo,
    ModelRef,
    TrainerHeartbeat,
    TrainingRequested,
)


def training_id() -> str:
    return f"tr-{uuid.uuid4().hex[:12]}"


def requested(device: str = "any", tid: str | None = None) -> TrainingRequested:
    return TrainingRequested(
        training_id=tid or training_id(),
        source="api",
        strategy_name="neuro_mean_reversion",
        strategy={"name": "neuro_mean_reversion"},
        symbols=["EURUSD"],
        timeframes=["1h"],
        device=device,  # type: ignore[arg-type]
    )


def cancel(tid: str | None = None) -> CancelRequested:
    return CancelRequested(training_id=tid or training_id(), source="api")


def progress(tid: str | None = None, batch: int = 1) -> BatchProgress:
    return BatchProgress(
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


def completed(tid: str | None = None) -> Completed:
    return Completed(
        training_id=tid or training_id(),
        source="trainer:t1",
        attempt=1,
        model=ModelRef(
            strategy="s",
            timeframe="1h",
            version=1,
            path="models/s/1h_v1",
            sha256="0" * 64,
            bytes=10,
        ),
        duration_s=1.0,
    )


def heartbeat() -> TrainerHeartbeat:
    return TrainerHeartbeat(
        source="trainer:t1", trainer_id="t1", host="h", device=DeviceInfo(type="cpu", name="cpu")
    )
