"""The same request through the bus trainer and through `ktrdr train` gives the same model.

Both are real processes with one torch thread each (thread count can change float summation
order), the same seed, strategy, dates and epochs. Weights must be bit-identical (torch.equal
on every tensor of the saved state dicts) and metrics equal.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from libs.pipeline.config.strategy import load_strategy
from libs.pipeline.jsonable import jsonable
from tests.integration.trainer.harness import KTRDR, REPO, STRATEGY, nmr_request

pytestmark = pytest.mark.integration


def state_dict(model_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)


def metrics(model_dir: Path) -> dict:
    return json.loads((model_dir / "metrics.json").read_text())


def differences(left: object, right: object, path: str = "") -> list[str]:
    """Where two JSON documents differ (readable failures for big metrics dicts). Wall-clock
    durations are the one thing allowed to differ."""
    if isinstance(left, dict) and isinstance(right, dict):
        keys = sorted((set(left) | set(right)) - {"duration_s"})
        return [d for k in keys for d in differences(left.get(k), right.get(k), f"{path}.{k}")]
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [
            d
            for i, (a, b) in enumerate(zip(left, right, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if left == right else [f"{path}: {left!r} != {right!r}"]


def single_model_dir(models_dir: Path) -> Path:
    (found,) = [p.parent for p in models_dir.rglob("model.pt")]
    return found


def start_ktrdr_train(
    start: str, end: str, models_dir: Path, strategy: Path = STRATEGY
) -> subprocess.Popen[bytes]:
    command = [str(KTRDR), "train", str(strategy), "--start", start, "--end", end]
    command += ["--epochs", "3", "--seed", "1234", "--device", "cpu"]
    command += ["--models-dir", str(models_dir), "--data-dir", str(REPO / "data")]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "KTRDR_TORCH_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def test_bus_trainer_and_ktrdr_train_give_identical_weights_and_metrics(
    probe, spawn, tmp_path
):
    req = nmr_request(epochs=3, seed=1234).model_copy(update={"tenant": "acme"})
    cli_models = tmp_path / "cli-models"
    cli = start_ktrdr_train(req.start_date, req.end_date, cli_models)
    trainer = spawn("equivalence")  # boots while `ktrdr train` runs
    await probe.wait_ready(trainer)
    await probe.publish(req)
    completed = await probe.wait_terminal(req.training_id)
    output, _ = await asyncio.to_thread(cli.communicate, timeout=300)
    assert cli.returncode == 0, output.decode(errors="replace")
    assert completed.type == "Completed", completed

    bus_dir, cli_dir = Path(completed.model.path), single_model_dir(cli_models)
    # The trainer saves in the request's tenant's tree; `ktrdr train` in the plain one.
    tenant_tree = trainer.models_dir / "tenants" / "acme" / req.strategy_name
    assert bus_dir.parent == tenant_tree and cli_dir.parent == cli_models / req.strategy_name
    assert bus_dir.name == cli_dir.name and bus_dir.name.endswith("_v1")
    bus_weights, cli_weights = state_dict(bus_dir), state_dict(cli_dir)
    assert bus_weights.keys() == cli_weights.keys() and bus_weights
    for name, tensor in bus_weights.items():
        assert torch.equal(tensor, cli_weights[name]), name

    bus_metrics, cli_metrics = metrics(bus_dir), metrics(cli_dir)
    assert differences(bus_metrics, cli_metrics) == []
    # And the Completed event carries exactly the metrics that were saved.
    assert completed.training_metrics == jsonable(bus_metrics["training"])
    assert completed.test_metrics == jsonable(bus_metrics["test"])


LSTM_STRATEGY = REPO / "tests" / "strategies_v3" / "lstm_triple_barrier.yaml"


async def test_an_lstm_strategy_gives_identical_weights_locally_and_through_the_service(
    probe, spawn, tmp_path
):
    """The v3 LSTM (triple-barrier labels, uniqueness weights, focal loss) through the bus
    trainer and through `ktrdr train`: the same weights, bit for bit, and the same metrics."""
    cfg = load_strategy(LSTM_STRATEGY)
    req = nmr_request(epochs=3, seed=1234, strategy=cfg.snapshot()).model_copy(
        update={"strategy_name": cfg.name}
    )
    cli_models = tmp_path / "cli-models"
    cli = start_ktrdr_train(req.start_date, req.end_date, cli_models, LSTM_STRATEGY)
    trainer = spawn("equivalence-lstm")
    await probe.wait_ready(trainer)
    await probe.publish(req)
    completed = await probe.wait_terminal(req.training_id)
    output, _ = await asyncio.to_thread(cli.communicate, timeout=300)
    assert cli.returncode == 0, output.decode(errors="replace")
    assert completed.type == "Completed", completed
    bus_dir, cli_dir = Path(completed.model.path), single_model_dir(cli_models)
    bus_weights, cli_weights = state_dict(bus_dir), state_dict(cli_dir)
    assert any(name.startswith("recurrent.") for name in bus_weights)  # an LSTM indeed
    assert bus_weights.keys() == cli_weights.keys()
    for name, tensor in bus_weights.items():
        assert torch.equal(tensor, cli_weights[name]), name
    assert differences(metrics(bus_dir), metrics(cli_dir)) == []
