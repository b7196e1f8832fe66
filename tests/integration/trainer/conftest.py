"""Fixtures: a probe on a fresh topology prefix and a factory of real trainer processes, on the
shared broker or on a private RabbitMQ node of the test's own (whose delivery-ack timeout the
test sets with `@pytest.mark.consumer_timeout_ms(ms)`, leaving the shared broker untouched)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import AMQP_URL
from tests.integration.trainer.harness import BusProbe, TrainerProcess
from tests.support.private_servers import PrivateRabbit, require_private_servers


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


@pytest.fixture
def rabbit(request: pytest.FixtureRequest) -> Iterator[PrivateRabbit]:
    require_private_servers()
    marker = request.node.get_closest_marker("consumer_timeout_ms")
    node = PrivateRabbit(consumer_timeout_ms=marker.args[0] if marker else None)
    node.start()
    # Our own node: check the ack timeout every second, not every minute.
    node.ctl("eval", "application:set_env(rabbit, channel_tick_interval, 1000).")
    try:
        yield node
    finally:
        node.destroy()


@pytest.fixture
async def private_probe(rabbit: PrivateRabbit) -> AsyncIterator[BusProbe]:
    probe = BusProbe(rabbit.url, f"it.private.{uuid.uuid4().hex[:8]}.", durable_tap=True)
    await probe.start()
    try:
        yield probe
    finally:
        await probe.disconnect()  # the node and its topology go with it


@pytest.fixture
def private_spawn(tmp_path: Path, rabbit: PrivateRabbit, private_probe: BusProbe) -> Any:
    started: list[TrainerProcess] = []

    def start(trainer_id: str, **env: Any) -> TrainerProcess:
        prefix = private_probe.topology.prefix
        trainer = TrainerProcess(tmp_path, rabbit.url, prefix, trainer_id, **env)
        started.append(trainer)
        return trainer

    yield start
    for trainer in started:
        trainer.stop()
