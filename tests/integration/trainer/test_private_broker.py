"""A trainer on a PRIVATE RabbitMQ node (tests/support/private_servers.py) whose delivery-ack
timeout is a few seconds: the training outlives it by handing over at each lease, ends once,
Completed, with the very weights of a run never interrupted (`train_strategy()` of the same
request in a process of its own)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.integration.trainer.harness import REPO, nmr_request

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),
    pytest.mark.consumer_timeout_ms(8000),
]

SEED = 1234


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)


REFERENCE = """
import json, sys
from pathlib import Path
from libs.pipeline.device import configure_threads
from libs.pipeline.pipeline import train_strategy
from libs.pipeline.request import TrainingRequest
configure_threads()
fields = json.loads(sys.argv[1])
result = train_strategy(TrainingRequest(**{**fields, "data_dir": Path(fields["data_dir"]),
                                           "models_dir": Path(fields["models_dir"])}))
print(result.model.path)
"""


async def reference_weights(request, tmp_path: Path) -> dict[str, torch.Tensor]:
    """train_strategy() of the same request in a process of its own, never interrupted (what a
    trainer runs, with the same one torch thread)."""
    fields = {
        "strategy": request.strategy,
        "data_dir": str(REPO / "data"),
        "models_dir": str(tmp_path / "reference"),
        "symbols": list(request.symbols),
        "timeframes": list(request.timeframes),
        "start_date": request.start_date,
        "end_date": request.end_date,
        "overrides": dict(request.overrides),
        "seed": request.seed,
        "device": "cpu",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", REFERENCE, json.dumps(fields)],
        cwd=REPO,
        env={**os.environ, "KTRDR_TORCH_THREADS": "1", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return weights(Path(done.stdout.strip().splitlines()[-1]))


def assert_same_weights(completed, reference: dict[str, torch.Tensor]) -> None:
    got = weights(Path(completed.model.path))
    assert got.keys() == reference.keys() and got
    for name, tensor in got.items():
        assert torch.equal(tensor, reference[name]), name


async def test_a_training_outlives_a_tiny_delivery_ack_timeout_and_completes_once(
    private_probe, private_spawn, tmp_path
):
    # Each delivery is held about 3 s (< the node's 8 s timeout): the run hands over; the
    # training itself (150 epochs, ~9 s on an idle machine) runs well past the timeout.
    trainer = private_spawn("lease", lease_s=3, broker_consumer_timeout_s=8)
    await private_probe.wait_ready(trainer)
    warm_up = nmr_request(epochs=1, seed=SEED)  # a cold first run imports and reads for seconds
    await private_probe.publish(warm_up)
    await private_probe.wait_terminal(warm_up.training_id, within_s=120)
    req = nmr_request(epochs=150, early_stopping=None, seed=SEED)
    await private_probe.publish(req)
    reference = asyncio.ensure_future(reference_weights(req, tmp_path))
    terminal = await private_probe.wait_terminal(req.training_id, within_s=400)
    assert terminal.type == "Completed", terminal
    events = private_probe.of(req.training_id)
    assert [e.type for e in events if e.is_terminal] == ["Completed"]
    started = private_probe.of(req.training_id, "Started")
    assert [s.attempt for s in started] == list(range(1, len(started) + 1))
    # Every hand-over resumed where the one before stopped: never from the beginning.
    assert all(s.resume_epoch is not None for s in started[1:])
    assert "taken back by the broker" not in trainer.log()  # never timed out
    assert len(started) >= 2  # it did outlive the lease, handing over
    assert_same_weights(terminal, await reference)
