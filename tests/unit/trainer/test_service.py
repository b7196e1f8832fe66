"""TrainerService end to end on the in-memory bus, with a fake pipeline (no torch, no I/O)."""

from __future__ import annotations

import asyncio

from libs.events.bus.memory.broker import StoredMessage
from libs.events.bus.policy import HANDLER_FAILED, REASON_HEADER, REASON_KIND_HEADER
from libs.events.catalog import Completed
from libs.pipeline.progress import PHASES
from tests.support.events import cancel, requested
from tests.unit.trainer.fakes import FakePipeline, Harness


def kinds(events):
    return [e.type for e in events]


async def test_one_training_publishes_the_full_sequence_in_order(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline(epochs=2, batches=3)
        await h.trainer(pipeline)
        req = requested(tenant="acme")
        await h.bus.publish(req)
        terminal = await h.wait_terminal(req.training_id)

        events = [e for e in h.of(req.training_id) if e.source.startswith("trainer:")]
        assert terminal.type == "Completed"
        assert kinds(events) == (
            ["Started"]
            + ["PhaseStarted"] * 9
            + (["BatchProgress"] * 3 + ["EpochCompleted"]) * 2
            + ["PhaseStarted"] * 2
            + ["Completed"]
        )
        assert [e.phase for e in events if e.type == "PhaseStarted"] == list(PHASES)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert {(e.attempt, e.source, e.correlation_id) for e in events} == {
            (1, "trainer:t0", str(req.event_id))
        }
        started = events[0]
        assert started.device.type == "cpu" and started.trainer_id == "t0"
        assert terminal.model.sha256 == "ab" * 32 and terminal.model.bytes == 123
        assert terminal.test_metrics == {"accuracy": 0.5}
        # The request reached the pipeline as a TrainingRequest on the trainer's own dirs, with
        # the models saved in the tenant's own tree.
        (sent,) = pipeline.calls
        assert sent.training_id == req.training_id
        assert sent.models_dir == tmp_path / "models" / "tenants" / "acme"
        assert sent.device == "cpu" and sent.seed == req.seed


async def test_a_tenant_that_is_no_folder_name_fails_before_training(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline(epochs=1, batches=1)
        await h.trainer(pipeline)
        req = requested(tenant="../other")
        await h.bus.publish(req)
        terminal = await h.wait_terminal(req.training_id)
        assert terminal.type == "Failed" and "tenant" in terminal.message
        assert pipeline.calls == []


async def test_cancel_mid_training_stops_within_one_batch(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline(hold=True)
        await h.trainer(pipeline)
        req = requested()
        await h.bus.publish(req)
        await h.wait_for(lambda _: h.of(req.training_id, "BatchProgress"))
        batches_at_cancel = pipeline.batches_run
        await h.bus.publish(cancel(req.training_id, "test cancel"))
        terminal = await h.wait_terminal(req.training_id)

        assert terminal.type == "Cancelled"
        assert terminal.phase == "training" and terminal.reason == "test cancel"
        # The pipeline may be inside one batch when the token flips: at most one more runs.
        assert pipeline.batches_run <= batches_at_cancel + 2
        trainer_events = [e for e in h.of(req.training_id) if e.source == "trainer:t0"]
        assert trainer_events[-1] is terminal  # nothing after Cancelled


async def test_cancelled_while_queued_is_never_run(tmp_path):
    async with Harness(tmp_path) as h:
        req = requested()
        await h.bus.publish(req)  # no trainer yet: it waits in the queue
        await h.bus.publish(cancel(req.training_id, "test cancel"))
        pipeline = FakePipeline()
        await h.trainer(pipeline)
        terminal = await h.wait_terminal(req.training_id)

        assert terminal.type == "Cancelled" and terminal.phase is None
        assert pipeline.calls == []
        assert kinds(h.of(req.training_id, "Started", "PhaseStarted")) == []


async def test_redelivered_request_of_a_finished_training_is_acked_without_running(tmp_path):
    async with Harness(tmp_path) as h:
        req = requested()
        first = FakePipeline()
        await h.trainer(first)
        await h.bus.publish(req)
        await h.wait_terminal(req.training_id)

        second = FakePipeline()
        other = await h.trainer(second, trainer_id="t-other")
        await h.bus.publish(req)  # the same request again, as after a lost ack
        # Wait until both trainers' queues are empty and nothing is in flight.
        queue = h.bus.broker.queue(h.topology.trainer_queue("any"))
        await h.wait_for(lambda _: not queue.ready and not other.running_ids())
        await h.services[0].stop()
        await other.stop()

        assert len(h.of(req.training_id, "Completed")) == 1
        assert len(first.calls) + len(second.calls) == 1


async def test_bad_dates_fail_clearly_and_are_not_retried(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline()
        await h.trainer(pipeline)
        req = requested(start_date="2017-13-45")
        await h.bus.publish(req)
        terminal = await h.wait_terminal(req.training_id)

        assert terminal.type == "Failed" and terminal.retryable is False
        assert "start_date" in terminal.message and "2017-13-45" in terminal.message
        assert pipeline.calls == []
        assert not h.bus.broker.queue(h.topology.trainer_queue("any")).ready


async def test_pipeline_input_error_is_failed_with_phase_and_acked(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline()
        pipeline.error = ValueError("data_dir: no file EURUSD_1h.csv")
        await h.trainer(pipeline)
        req = requested()
        await h.bus.publish(req)
        terminal = await h.wait_terminal(req.training_id)

        assert terminal.type == "Failed"
        assert (terminal.error_type, terminal.phase, terminal.retryable) == (
            "ValueError",
            "indicators",
            False,
        )
        assert "EURUSD_1h.csv" in terminal.message and "ValueError" in terminal.traceback
        assert len(pipeline.calls) == 1  # acked: not redelivered


async def test_runtime_error_is_failed_retryable(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline()
        pipeline.error = RuntimeError("CUDA out of memory")
        await h.trainer(pipeline)
        req = requested()
        await h.bus.publish(req)
        terminal = await h.wait_terminal(req.training_id)
        assert terminal.type == "Failed" and terminal.retryable is True


async def test_poison_bodies_are_left_to_the_projector_and_the_trainer_keeps_serving(tmp_path):
    """A bad body also reaches the projector's queue, whose consumer parks it with the reason;
    the trainer drops its own copy, so the message lands in ktrdr.dead once."""
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline()
        await h.trainer(pipeline)
        exchange = h.topology.events_exchange
        for body in (b"not json", b'{"type": "TrainingRequested", "source": "api"}'):
            h.bus.broker.publish(StoredMessage(exchange, "training.requested.any", body))
        req = requested()
        await h.bus.publish(req)
        terminal = await h.wait_terminal(req.training_id)

        assert terminal.type == "Completed"
        assert list(h.bus.broker.queue(h.topology.dead_queue).ready) == []  # not parked twice
        assert pipeline.max_running == 1  # only the good request ran


async def test_a_run_past_its_lease_hands_over_to_the_next_attempt_and_completes(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline(hold=True)
        await h.trainer(pipeline, lease_s=0.3, broker_consumer_timeout_s=1)
        req = requested()
        await h.bus.publish(req)
        await h.wait_for(lambda _: len(h.of(req.training_id, "Started")) >= 2)
        pipeline.release.set()
        terminal = await h.wait_terminal(req.training_id)

        assert terminal.type == "Completed"
        attempts = [e.attempt for e in h.of(req.training_id, "Started")]
        assert attempts == list(range(1, len(attempts) + 1)) and terminal.attempt == attempts[-1]
        assert [e.type for e in h.of(req.training_id) if e.is_terminal] == ["Completed"]
        # Each hand-over is a copy of the request (same event_id: stored once) that says which
        # attempt it continues after.
        copies = [e for e in h.of(req.training_id, "TrainingRequested") if e.attempt > 0]
        assert [c.attempt for c in copies] == attempts[:-1]
        assert {c.event_id for c in copies} == {req.event_id}


async def test_without_a_lease_a_run_holds_its_request_as_long_as_it_runs(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline(hold=True)
        await h.trainer(pipeline, lease_s=None)
        req = requested()
        await h.bus.publish(req)
        await h.wait_for(lambda _: pipeline.batches_run >= 100)  # >= 0.5 s of held batches
        pipeline.release.set()
        terminal = await h.wait_terminal(req.training_id)
        assert (terminal.type, terminal.attempt) == ("Completed", 1)


async def test_concurrency_one_runs_requests_of_both_queues_one_at_a_time(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline(batches=2)
        await h.trainer(pipeline, concurrency=1)
        reqs = [requested(device="any"), requested(device="cpu"), requested(device="any")]
        for req in reqs:
            await h.bus.publish(req)
        for req in reqs:
            assert (await h.wait_terminal(req.training_id)).type == "Completed"
        assert pipeline.max_running == 1 and len(pipeline.calls) == 3


async def test_a_cuda_request_is_not_taken_by_a_cpu_trainer(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline()
        await h.trainer(pipeline)
        cuda_req, any_req = requested(device="cuda"), requested()
        await h.bus.publish(cuda_req)
        await h.bus.publish(any_req)
        await h.wait_terminal(any_req.training_id)
        assert h.of(cuda_req.training_id, "Started") == []
        assert len(h.bus.broker.queue(h.topology.trainer_queue("cuda")).ready) == 1


async def test_shutdown_within_grace_finishes_the_running_training(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline(hold=True)
        service = await h.trainer(pipeline)
        req = requested()
        await h.bus.publish(req)
        await h.wait_for(lambda _: h.of(req.training_id, "BatchProgress"))
        stopping = service.stop(grace_s=30)
        pipeline.release.set()
        await stopping
        assert [e.type for e in h.of(req.training_id) if e.is_terminal] == ["Completed"]
        assert not h.bus.broker.queue(h.topology.trainer_queue("any")).ready


async def test_shutdown_past_grace_gives_the_request_back_for_attempt_two(tmp_path):
    async with Harness(tmp_path) as h:
        first = FakePipeline(hold=True)
        service = await h.trainer(first)
        req = requested()
        await h.bus.publish(req)
        await h.wait_for(lambda _: h.of(req.training_id, "BatchProgress"))
        await service.stop(grace_s=0)  # the run is stopped and its request requeued
        assert not [e for e in h.of(req.training_id) if e.is_terminal]

        second = FakePipeline()
        await h.trainer(second, trainer_id="t-second")
        terminal = await h.wait_terminal(req.training_id)
        assert isinstance(terminal, Completed) and terminal.attempt == 2
        started = h.of(req.training_id, "Started")
        assert [(e.source, e.attempt) for e in started] == [
            ("trainer:t0", 1),
            ("trainer:t-second", 2),
        ]


async def test_heartbeat_reports_device_and_running_trainings(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline(hold=True)
        service = await h.trainer(pipeline, concurrency=2)
        req = requested()
        await h.bus.publish(req)
        await h.wait_for(lambda _: h.of(req.training_id, "BatchProgress"))
        beat = service.heartbeat()
        assert beat.running == [req.training_id] and beat.concurrency == 2
        assert beat.device.type == "cpu" and beat.training_id is None
        first = [e for e in h.events if e.type == "TrainerHeartbeat"]
        assert first and first[0].trainer_id == "t0" and first[0].running == []
        pipeline.release.set()
        await h.wait_terminal(req.training_id)


async def test_a_request_waits_until_the_control_reader_has_caught_up(tmp_path, monkeypatch):
    # A cancel published just before the request is dequeued may still be on its way to the
    # control reader: the trainer syncs the reader to the stream's end before it decides.
    from services.trainer.service import TrainerService

    gate = asyncio.Event()
    original = TrainerService._on_control

    async def lagging_reader(self, delivery):
        if delivery.event.type == "CancelRequested":
            await gate.wait()
        await original(self, delivery)

    monkeypatch.setattr(TrainerService, "_on_control", lagging_reader)
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline()
        service = await h.trainer(pipeline)
        req = requested()
        synced, seen_at_sync = service.worker.sync_control, []

        async def observed_sync() -> None:
            await synced()
            seen_at_sync.append(service.cancel_reason(req.training_id))

        service.worker.sync_control = observed_sync
        await h.bus.publish(
            cancel(req.training_id, "test cancel")
        )  # the reader now lags on this one
        await h.bus.publish(req)
        await h.wait_for(lambda _: req.training_id in service.worker.active)
        gate.set()
        terminal = await h.wait_terminal(req.training_id)
        assert seen_at_sync == ["test cancel"]  # the sync waited for the lagging reader
        assert terminal.type == "Cancelled" and terminal.phase is None
        assert pipeline.calls == []


async def test_a_redelivery_while_the_old_delivery_still_runs_here_stops_the_old_run(tmp_path):
    # The broker redelivers only after it took the first delivery back (channel closed by the
    # delivery-ack timeout): the old run must stop at once; only the new attempt finishes.
    from libs.events.bus.port import Delivery

    async with Harness(tmp_path) as h:
        pipeline = FakePipeline(hold=True)
        service = await h.trainer(pipeline, concurrency=2)
        req = requested()
        await h.bus.publish(req)
        await h.wait_for(lambda _: h.of(req.training_id, "BatchProgress"))
        redelivery = Delivery(
            event=req,
            queue=h.topology.trainer_queue("any"),
            routing_key=req.routing_key,
            redelivered=True,
            delivery_count=1,
        )
        second = asyncio.ensure_future(service.worker.handle(redelivery))
        await h.wait_for(lambda _: any(e.attempt == 2 for e in h.of(req.training_id, "Started")))
        pipeline.release.set()
        await second
        await h.wait_for(lambda _: not service.running_ids())

        assert len(pipeline.calls) == 2
        assert [(e.attempt, e.type) for e in h.of(req.training_id) if e.is_terminal] == [
            (2, "Completed")
        ]
        old = [e for e in h.of(req.training_id) if e.attempt == 1]
        first_new = next(e for e in h.events if e.attempt == 2 and e.training_id == req.training_id)
        assert all(h.events.index(e) < h.events.index(first_new) for e in old)


async def test_a_duplicate_request_waits_for_the_running_one_and_is_not_run_again(tmp_path):
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline(hold=True)
        service = await h.trainer(pipeline, concurrency=2)
        req = requested()
        await h.bus.publish(req)
        await h.bus.publish(req)  # the relay publishes at least once
        await h.wait_for(lambda _: h.of(req.training_id, "BatchProgress"))
        pipeline.release.set()
        await h.wait_terminal(req.training_id)
        queue = h.bus.broker.queue(h.topology.trainer_queue("any"))
        await h.wait_for(lambda _: not queue.ready and not service.worker.active)
        assert len(pipeline.calls) == 1
        assert len(h.of(req.training_id, "Completed")) == 1


async def test_a_request_whose_handler_keeps_failing_is_dead_lettered_and_serving_goes_on(tmp_path):
    # Nothing is decided blind: if the control stream cannot be read, the request goes back.
    # One that keeps failing ends in the dead-letter queue after the delivery limit (3 here).
    async with Harness(tmp_path) as h:
        pipeline = FakePipeline()
        service = await h.trainer(pipeline)
        poison = requested()
        real_sync = service.worker.sync_control
        tries = []

        async def sync_failing_for_poison() -> None:
            current = service.worker.active
            if poison.training_id in current:
                tries.append(current[poison.training_id])
                raise ConnectionError("control stream unreadable")
            await real_sync()

        service.worker.sync_control = sync_failing_for_poison
        await h.bus.publish(poison)
        good = requested()
        await h.bus.publish(good)
        assert (await h.wait_terminal(good.training_id)).type == "Completed"
        dead = h.bus.broker.queue(h.topology.dead_queue).ready
        await h.wait_for(lambda _: len(dead) == 1)

        assert tries == [1, 2, 3, 4]  # the first delivery + x-delivery-limit (3) redeliveries
        # Parked by the trainer on its last try, saying why.
        reason = dead[0].headers[REASON_HEADER]
        assert dead[0].headers[REASON_KIND_HEADER] == HANDLER_FAILED
        assert "after 4 deliveries" in reason and "control stream not readable" in reason
        assert h.of(poison.training_id, "Started") == []
