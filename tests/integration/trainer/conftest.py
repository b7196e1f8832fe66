"""Fixtures: a probe on a fresh topology prefix and a factory of real trainer processes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import AMQP_URL
from tests.integration.trainer.harness import BusProbe, TrainerProcess


@pytest.fixture
def prefix() -> str:
    return f"it.trainer.{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def probe(rabbitmq_available, prefix: str) -> AsyncIterator[BusProbe]:
    probe = BusProbe(AMQP_URL, prefix)
    await probe.start()  # declares the topology, so requests published now wait in their queue
    try:
        yield probe
    finally:
        await probe.close()


@pytest.fixture
def spawn(tmp_path: Path, prefix: str) -> Any:
    started: list[TrainerProcess] = []

    def start(trainer_id: str, **env: Any) -> TrainerProcess:
        trainer = TrainerProcess(tmp_path, AMQP_URL, prefix, trainer_id, **env)
        started.append(trainer)
        return trainer

    spawn_fn: Callable[..., TrainerProcess] = start
    yield spawn_fn
    for trainer in started:
        trainer.stop()
