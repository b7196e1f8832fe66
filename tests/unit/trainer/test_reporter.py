"""EventReporter: envelope, seq, throttling at the source."""

from __future__ import annotations

from libs.pipeline.progress import BatchInfo, EpochInfo
from services.trainer.reporter import EventReporter, RunEnvelope

ENVELOPE = RunEnvelope("tr-1", "acme", "trainer:x", 3, "corr-9")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def batch(epoch: int, n: int, total: int = 10) -> BatchInfo:
    return BatchInfo(epoch, 2, n, total, 0.7, 0.4, 1000.0, 0.1, 5.0)


def make(interval: float = 1.0):
    sent, clock = [], Clock()
    return EventReporter(ENVELOPE, sent.append, batch_interval_s=interval, clock=clock), sent, clock


def test_batches_are_throttled_to_the_interval_but_each_epochs_last_batch_is_kept():
    reporter, sent, clock = make(interval=1.0)
    for n in range(1, 11):  # 10 batches, 0.3 s apart
        reporter.batch_progress(batch(1, n))
        clock.now += 0.3
    # t=0 (first), t=1.2 (n=5), t=2.4 (n=9), and n=10 as the epoch's last batch.
    assert [e.batch for e in sent] == [1, 5, 9, 10]
    assert reporter.batches_seen == 10 and reporter.batches_sent == 4


def test_short_epochs_do_not_get_an_extra_last_batch_event():
    reporter, sent, clock = make(interval=1.0)
    for epoch in (1, 2, 3):  # three epochs of 4 batches, 0.125 s apart: 0.5 s per epoch
        for n in range(1, 5):
            reporter.batch_progress(batch(epoch, n, total=4))
            clock.now += 0.125
    # Only the throttle's picks (t=0, t=1.0 → epoch 3 batch 1): one event per interval at most.
    assert [(e.epoch, e.batch) for e in sent] == [(1, 1), (3, 1)]


def test_zero_interval_sends_every_batch_and_epochs_are_never_throttled():
    reporter, sent, clock = make(interval=0)
    for n in range(1, 4):
        reporter.batch_progress(batch(1, n, total=3))
    for epoch in (1, 2):
        reporter.epoch_completed(EpochInfo(epoch, 2, 0.5, 0.6, 0.55, 0.5, 1e-3, 0.2, 1))
    assert [e.type for e in sent] == ["BatchProgress"] * 3 + ["EpochCompleted"] * 2


def test_every_event_carries_the_envelope_and_a_growing_seq():
    reporter, sent, _ = make()
    reporter.phase_started("data_loading", 0, 11, "loading")
    reporter.batch_progress(batch(1, 1))
    failed = reporter.failed(error_type="ValueError", message="boom", retryable=False)
    events = [*sent, failed]
    assert [e.seq for e in events] == [1, 2, 3]
    for event in events:
        assert (event.training_id, event.tenant, event.source, event.attempt) == (
            "tr-1",
            "acme",
            "trainer:x",
            3,
        )
        assert event.correlation_id == "corr-9"
    assert failed.phase == "data_loading"  # the phase that was running when it failed
    progress = sent[1]
    assert (progress.running_loss, progress.running_accuracy, progress.eta_s) == (0.7, 0.4, 5.0)


def test_cancelled_payload_keeps_phase_epoch_and_reason():
    reporter, _, _ = make()
    event = reporter.cancelled("training", 2, "user asked")
    assert (event.type, event.phase, event.epoch, event.reason) == (
        "Cancelled",
        "training",
        2,
        "user asked",
    )
