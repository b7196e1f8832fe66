"""A training whose trainer dies or is stopped continues from its last checkpoint as the next
attempt, on another trainer, and ends with the very weights of a run never interrupted.

Real `ktrdr trainer` processes on the real RabbitMQ; checkpoints on a filesystem artifact
store the test's trainers share (as they would a volume or a bucket).
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import uuid
from pathlib import Path

import pytest
import torch

from libs.events.catalog import Event, TrainingRequested
from tests.integration.trainer.harness import BusProbe, TrainerProcess, nmr_request

pytestmark = pytest.mark.integration

EPOCHS = 6


def weights_digest(completed: Event) -> str:
    """sha256 of the saved state dict, tensor by tensor (not of the file's bytes)."""
    model_dir = Path(completed.model.path)  # type: ignore[attr-defined]
    state = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def twin(request: TrainingRequested) -> TrainingRequested:
    """The same request as another training (same seed, data, parameters)."""
    return request.model_copy(
        update={"training_id": f"it-{uuid.uuid4().hex[:12]}", "event_id": uuid.uuid4()}
    )


def epochs_done(probe: BusProbe, training_id: str, attempt: int) -> int:
    done = [e.epoch for e in probe.of(training_id, "EpochCompleted") if e.attempt == attempt]
    return max(done, default=0)


async def uninterrupted_digest(probe: BusProbe, trainer: TrainerProcess, req: TrainingRequested):
    reference = twin(req)
    await probe.publish(reference)
    completed = await probe.wait_terminal(reference.training_id)
    assert completed.type == "Completed", completed
    assert [e.attempt for e in probe.of(reference.training_id, "Started")] == [1]
    return weights_digest(completed)


def checkpoints_left(tmp_path: Path, training_id: str) -> list[Path]:
    return sorted((tmp_path / "artifacts").rglob(f"*{training_id}*/*.ckpt"))


async def checkpoints_dropped(tmp_path: Path, training_id: str, within_s: float = 30.0) -> bool:
    """The trainer deletes them once its terminal event is confirmed, i.e. just after the
    probe may have seen that event: wait for the deletion, with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while checkpoints_left(tmp_path, training_id):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)  # a folder has no event to wait on: look again
    return True


async def test_kill_9_at_epoch_k_resumes_at_k_or_later_with_identical_weights(
    probe, spawn, tmp_path
):
    trainers = {t.trainer_id: t for t in (spawn("one", checkpoint_interval_s=0), spawn("two"))}
    for trainer in trainers.values():
        await probe.wait_ready(trainer)
    req = nmr_request(epochs=EPOCHS, early_stopping=None)
    await probe.publish(req)
    await probe.wait_for(lambda _: epochs_done(probe, req.training_id, 1) >= 2)
    (first,) = probe.of(req.training_id, "Started")
    victim = trainers.pop(first.trainer_id)
    (survivor,) = trainers.values()
    victim.kill9()
    k = epochs_done(probe, req.training_id, 1) + 1  # the epoch it was killed in

    terminal = await probe.wait_terminal(req.training_id)
    assert (terminal.type, terminal.attempt, terminal.source) == ("Completed", 2, survivor.source)
    resumed = probe.of(req.training_id, "Started")[-1]
    assert resumed.attempt == 2 and resumed.resume_epoch is not None
    assert resumed.resume_epoch >= k - 1
    second_epochs = [e.epoch for e in probe.of(req.training_id, "EpochCompleted") if e.attempt == 2]
    assert second_epochs[0] != 1 and second_epochs[0] == resumed.resume_epoch
    assert second_epochs[-1] == EPOCHS
    assert await checkpoints_dropped(tmp_path, req.training_id)  # dropped once Completed

    assert weights_digest(terminal) == await uninterrupted_digest(probe, survivor, req)


async def test_sigterm_checkpoints_the_very_batch_and_the_heir_resumes_it(probe, spawn, tmp_path):
    hasty = spawn("hasty", shutdown_grace_s=0, checkpoint_interval_s=0)
    await probe.wait_ready(hasty)
    req = nmr_request(epochs=EPOCHS, early_stopping=None)
    await probe.publish(req)
    await probe.wait_for(lambda _: epochs_done(probe, req.training_id, 1) >= 2)
    heir = spawn("heir")  # boots while hasty holds the request
    hasty.signal(signal.SIGTERM)
    assert await hasty.wait_exit() == 0
    last_batch = max(
        (e.epoch, e.batch) for e in probe.of(req.training_id, "BatchProgress") if e.attempt == 1
    )
    assert not [e for e in probe.of(req.training_id) if e.is_terminal]

    terminal = await probe.wait_terminal(req.training_id)
    assert (terminal.type, terminal.attempt, terminal.source) == ("Completed", 2, heir.source)
    resumed = probe.of(req.training_id, "Started")[-1]
    # Handed back within one batch of the signal, checkpointed where it stopped.
    assert (resumed.resume_epoch, resumed.resume_batch) >= last_batch
    first_progress = next(e for e in probe.of(req.training_id, "BatchProgress") if e.attempt == 2)
    assert (first_progress.epoch, first_progress.batch) > (1, 1)
    assert weights_digest(terminal) == await uninterrupted_digest(probe, heir, req)


@pytest.mark.timeout(420)
async def test_a_broker_restart_at_epoch_k_resumes_at_k_or_later_with_identical_weights(
    rabbit, private_probe, private_spawn
):
    """On a private node the test stops and starts again. Long enough (a fifth of a second an
    epoch here; the node's stop takes seconds) that the node is gone well before the last epoch."""
    epochs, probe = 100, private_probe
    trainer = private_spawn("restart", checkpoint_interval_s=0)
    await probe.wait_ready(trainer)
    req = nmr_request(epochs=epochs, early_stopping=None)
    await probe.publish(req)
    await probe.wait_for(lambda _: epochs_done(probe, req.training_id, 1) >= 2)
    k = epochs_done(probe, req.training_id, 1) + 1  # the epoch it is in as the node goes
    await asyncio.to_thread(rabbit.stop)
    await asyncio.to_thread(rabbit.start)

    terminal = await probe.wait_terminal(req.training_id, within_s=180)
    assert terminal.type == "Completed", terminal
    assert [e.type for e in probe.of(req.training_id) if e.is_terminal] == ["Completed"]
    resumed = probe.of(req.training_id, "Started")[-1]
    assert resumed.attempt >= 2 and resumed.resume_epoch is not None, resumed
    assert resumed.resume_epoch >= k - 1
    later = [
        e.epoch for e in probe.of(req.training_id, "EpochCompleted") if e.attempt == resumed.attempt
    ]
    assert later[0] != 1 and later[-1] == epochs
    assert weights_digest(terminal) == await uninterrupted_digest(probe, trainer, req)
