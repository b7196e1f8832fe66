"""OrderedPublisher (order, confirms, retries) and the Failed-event description of errors."""

from __future__ import annotations

import asyncio

import pytest

from libs.events.bus.port import PublishFailed
from libs.events.catalog import CancelRequested
from services.trainer.errors import RequestError, check_dates, describe_failure
from services.trainer.publisher import OrderedPublisher, PublisherStopped


class FlakyBus:
    """Fails the first `failures` publish_many calls; records what was confirmed."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.confirmed: list[int] = []
        self.calls = 0

    async def publish_many(self, events):
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise PublishFailed("broker away")
        self.confirmed.extend(e.seq for e in events)


def event(seq: int) -> CancelRequested:
    return CancelRequested(training_id="t", source="api", seq=seq)


async def test_events_leave_in_submission_order_and_publish_waits_for_the_confirm():
    bus = FlakyBus(failures=2)
    publisher = OrderedPublisher(bus, retry_s=0.001)
    publisher.start()
    for seq in range(1, 6):
        publisher.submit(event(seq))
    await publisher.publish(event(6))
    # Confirmed when publish() returns, after two failed attempts, with nothing lost or
    # reordered (a retried batch may duplicate on a real broker; consumers dedupe by event_id).
    assert bus.confirmed == [1, 2, 3, 4, 5, 6]
    assert bus.calls >= 3
    await publisher.stop()


async def test_stop_fails_waiters_that_could_not_be_confirmed():
    bus = FlakyBus(failures=10**9)
    publisher = OrderedPublisher(bus, retry_s=0.001)
    publisher.start()
    waiter = asyncio.ensure_future(publisher.publish(event(1)))
    await asyncio.sleep(0)  # let the waiter enqueue its event
    await publisher.stop(timeout_s=0.05)
    with pytest.raises(PublisherStopped):
        await waiter
    with pytest.raises(PublisherStopped):
        await publisher.publish(event(2))


def test_input_errors_are_not_retryable_and_runtime_errors_are():
    config = describe_failure(ValueError("model.training.optimiser: unknown field"))
    assert (config.error_type, config.retryable) == ("ValueError", False)
    assert config.message == "model.training.optimiser: unknown field"
    missing = describe_failure(FileNotFoundError("data/EURUSD_1h.csv"))
    assert missing.retryable is True  # an OSError: the disk/mount may be back next time
    runtime = describe_failure(RuntimeError(""))
    assert (runtime.message, runtime.retryable) == ("RuntimeError", True)


def test_traceback_excerpt_is_capped_and_keeps_the_end():
    try:
        raise ValueError("x" * 10_000)
    except ValueError as error:
        info = describe_failure(error)
    assert info.traceback is not None and len(info.traceback) <= 2_001
    assert info.traceback.endswith("x")


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [("2017-13-01", None, "start_date"), (None, "soon", "end_date")],
)
def test_bad_dates_name_the_field(start, end, field):
    with pytest.raises(RequestError, match=field):
        check_dates(start, end)


def test_start_after_end_is_an_error_and_good_dates_pass():
    with pytest.raises(RequestError, match="after end_date"):
        check_dates("2017-06-01", "2017-01-01")
    check_dates("2017-01-01", "2017-06-01T12:00")
    check_dates(None, None)


def test_a_huge_error_message_is_cut_so_the_failed_event_stays_small() -> None:
    info = describe_failure(RuntimeError("x" * 5_000_000))
    assert len(info.message) < 5000 and "5000000 characters, cut" in info.message
