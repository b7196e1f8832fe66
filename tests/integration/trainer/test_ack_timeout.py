"""The broker's delivery-ack timeout (consumer_timeout) fires under a running training.

On a private RabbitMQ node of the test's own with a 3 s consumer_timeout, checked every second
(the shared broker is never reconfigured), and a trainer whose lease is longer than that -- a
misconfiguration the lease exists to prevent. The broker closes the trainer's request channel
under attempt 1; the robust channel reopens and the request comes back as attempt 2. The trainer
must stop attempt 1 at once, so only attempt 2 goes on -- never two runs, never two terminal
events. (Configured as documented, the trainer's lease keeps every delivery below the timeout,
handing over to the next attempt, which resumes from its checkpoint: docs/trainer.md.)
"""

from __future__ import annotations

import pytest

from tests.integration.trainer.harness import long_request

pytestmark = [pytest.mark.integration, pytest.mark.consumer_timeout_ms(3000)]


async def test_a_run_whose_delivery_timed_out_stops_and_only_the_redelivery_runs(
    private_probe, private_spawn
):
    probe = private_probe
    trainer = private_spawn("slow-ack")
    await probe.wait_ready(trainer)

    req = long_request()
    await probe.publish(req)

    def attempt_2_started(_: object) -> bool:
        return any(e.attempt == 2 for e in probe.of(req.training_id, "Started"))

    await probe.wait_for(attempt_2_started, within_s=60)

    def attempt_2_is_training(_: object) -> bool:
        progress = probe.of(req.training_id, "BatchProgress")
        return bool(progress) and progress[-1].attempt == 2

    await probe.wait_for(attempt_2_is_training)
    await probe.cancel(req.training_id)
    terminal = await probe.wait_terminal(req.training_id)

    assert (terminal.type, terminal.attempt) == ("Cancelled", 2), terminal
    events = probe.trainer_events(req.training_id)
    second_start = next(i for i, e in enumerate(events) if e.attempt == 2)
    # Attempt 1 was stopped before attempt 2 started: none of its events come later, and it
    # published no terminal event of its own.
    assert all(e.attempt == 2 for e in events[second_start:])
    assert [e.attempt for e in events if e.is_terminal] == [2]
    # Attempt 1 was really running when the broker took its delivery back (how far it got
    # before the 3 s timeout fired depends on the machine's speed, so not necessarily batches).
    first_attempt = events[:second_start]
    assert [e.type for e in first_attempt[:1]] == ["Started"], first_attempt
    assert any(e.type == "PhaseStarted" for e in first_attempt), first_attempt
    assert trainer.log_match(r"delivery of attempt 1 was taken back by the broker"), trainer.log()
