"""The events a trainer would publish for one run, built by hand (no torch, no bus)."""

from __future__ import annotations

from libs.events import catalog as ev
from libs.pipeline.progress import PHASES

TRAINER = "trainer:t1"


def run_events(
    training_id: str,
    *,
    epochs: int = 2,
    batches: int = 2,
    attempt: int = 1,
    outcome: str = "completed",
    tenant: str = "default",
) -> list[ev.Event]:
    seq = iter(range(1, 10_000))
    common = {"training_id": training_id, "tenant": tenant, "source": TRAINER, "attempt": attempt}
    out: list[ev.Event] = [
        ev.Started(
            **common,
            seq=next(seq),
            trainer_id="t1",
            host="h",
            device=ev.DeviceInfo(type="cpu", name="cpu"),
        )
    ]
    for index, phase in enumerate(PHASES):
        out.append(
            ev.PhaseStarted(
                **common, seq=next(seq), phase=phase, index=index, total_phases=len(PHASES)
            )
        )
        if phase != "training":
            continue
        for epoch in range(1, epochs + 1):
            for batch in range(1, batches + 1):
                done = ((epoch - 1) * batches + batch) / (epochs * batches)
                out.append(
                    ev.BatchProgress(
                        **common,
                        seq=next(seq),
                        epoch=epoch,
                        total_epochs=epochs,
                        batch=batch,
                        total_batches=batches,
                        running_loss=1.0 / batch,
                        running_accuracy=0.5,
                        samples_per_s=100.0,
                        progress=done,
                        eta_s=1.0,
                    )
                )
            out.append(
                ev.EpochCompleted(
                    **common,
                    seq=next(seq),
                    epoch=epoch,
                    total_epochs=epochs,
                    train_loss=1.0,
                    train_accuracy=0.5,
                    val_loss=1.0 / epoch,
                    val_accuracy=0.5,
                    learning_rate=0.01,
                    duration_s=0.1,
                    best_epoch=epoch,
                )
            )
    out.append(_terminal(outcome, common, next(seq)))
    return out


def _terminal(outcome: str, common: dict, seq: int) -> ev.Event:
    if outcome == "completed":
        model = ev.ModelRef(
            strategy="tiny_rsi",
            timeframe="1h",
            version=1,
            path="models/tiny_rsi/1h_v1",
            sha256="0" * 64,
            bytes=1,
        )
        return ev.Completed(**common, seq=seq, model=model, duration_s=1.0)
    if outcome == "failed":
        return ev.Failed(**common, seq=seq, error_type="ValueError", message="boom")
    return ev.Cancelled(**common, seq=seq, phase="training", epoch=1)
