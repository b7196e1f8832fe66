"""Real trainer processes (`ktrdr trainer`) on a uniquely prefixed RabbitMQ topology.

`BusProbe` is the test's own view of the bus: it publishes requests and cancellations with
confirms and records every event on the events exchange through a tap, in arrival order.
`TrainerProcess` runs `ktrdr trainer` as a subprocess with its log in a file. Waits are on the
things expected (an event, a log line, an exit), each with a timeout -- no sleeps.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from libs.events.bus.amqp.adapter import AmqpBus
from libs.events.bus.amqp.consumers import raw_of
from libs.events.bus.topology import Topology
from libs.events.catalog import CancelRequested, Event, TrainingRequested
from libs.pipeline.config.strategy import load_strategy
from tests.support.event_tap import TappedEvents

REPO = Path(__file__).resolve().parents[3]
KTRDR = Path(sys.executable).parent / "ktrdr"
STRATEGY = REPO / "strategies" / "neuro_mean_reversion.yaml"


def nmr_request(epochs: int = 2, *, seed: int = 7, **overrides: Any) -> TrainingRequested:
    """neuro_mean_reversion on three months of EURUSD 1h: ~17 batches an epoch, seconds."""
    cfg = load_strategy(STRATEGY)
    fields: dict[str, Any] = {
        "start_date": "2017-01-01",
        "end_date": "2017-03-31",
    }
    fields.update(
        {k: overrides.pop(k) for k in ("start_date", "end_date", "strategy") if k in overrides}
    )
    return TrainingRequested(
        training_id=f"it-{uuid.uuid4().hex[:12]}",
        source="api",
        strategy_name=cfg.name,
        strategy=fields.pop("strategy", cfg.snapshot()),
        symbols=list(cfg.symbols),
        timeframes=list(cfg.timeframes),
        overrides={"epochs": epochs, **overrides},
        seed=seed,
        **fields,
    )


def long_request(**overrides: Any) -> TrainingRequested:
    """Runs for minutes unless stopped: many epochs, no early stopping."""
    return nmr_request(epochs=500, early_stopping=None, **overrides)


class BusProbe(TappedEvents):
    """`durable_tap=True` (a private node the test restarts): the tap is a quorum queue, which
    keeps the events trainers publish once the node is back while the probe is still
    reconnecting; the bus's own tap queue is exclusive and goes with the connection, so the
    probe would miss them (a redelivery's `Started`, even the terminal event)."""

    # Real processes on a shared 2-core machine: generous defaults for waits.
    wait_s, terminal_wait_s = 60.0, 90.0

    def __init__(self, url: str, prefix: str, *, durable_tap: bool = False) -> None:
        super().__init__()
        self.url, self.durable_tap = url, durable_tap
        self.topology = Topology(prefix=prefix)
        self.bus = AmqpBus(url, self.topology, connection_name=f"probe-{prefix}")
        self._tap_connection: AbstractRobustConnection | None = None
        self._seen: set[uuid.UUID] = set()

    async def start(self) -> None:
        await self.bus.start()
        if self.durable_tap:
            await self._tap_durably()
        else:
            await self.bus.tap(["#"], self._record)

    async def _tap_durably(self) -> None:
        self._tap_connection = await aio_pika.connect_robust(self.url)
        channel = await self._tap_connection.channel()
        queue = await channel.declare_queue(
            f"{self.topology.prefix}probe.tap", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(self.topology.events_exchange, routing_key="#")
        await queue.consume(self._on_tapped)  # the robust channel consumes again on reconnect

    async def _on_tapped(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            delivery = raw_of(message, message.routing_key or "").to_delivery()
            # An ack lost in the restart, or a publish retried after a lost confirm, brings
            # an event twice: recorded once, as the log keeps it.
            if delivery.event.event_id not in self._seen:
                self._seen.add(delivery.event.event_id)
                await self._record(delivery)

    async def disconnect(self) -> None:
        if self._tap_connection is not None:
            await self._tap_connection.close()
            self._tap_connection = None
        await self.bus.close()

    async def close(self) -> None:
        await self.disconnect()
        from libs.events.bus.amqp.topology import delete_topology

        connection = await aio_pika.connect(self.url)
        await delete_topology(await connection.channel(), self.topology)
        await connection.close()

    async def publish(self, event: Event) -> None:
        await self.bus.publish(event)

    async def cancel(self, training_id: str) -> CancelRequested:
        event = CancelRequested(training_id=training_id, source="api", reason="test cancel")
        await self.bus.publish(event)
        return event

    def trainer_events(self, training_id: str) -> list[Event]:
        return [e for e in self.of(training_id) if e.source.startswith("trainer:")]

    async def wait_ready(self, trainer: TrainerProcess, within_s: float = 60.0) -> None:
        """A trainer's first heartbeat is published once it consumes its request queues."""

        def beat(events: list[Event]) -> bool:
            trainer.check_alive()
            return any(
                e.type == "TrainerHeartbeat" and e.trainer_id == trainer.trainer_id for e in events
            )

        await self.wait_for(beat, within_s)


class TrainerProcess:
    def __init__(self, tmp: Path, url: str, prefix: str, trainer_id: str, **env: Any) -> None:
        self.trainer_id = trainer_id
        self.log_path = tmp / f"{trainer_id}.log"
        self.models_dir = tmp / "models"
        environment = {
            **os.environ,
            "KTRDR_BROKER_URL": url,
            "KTRDR_TOPOLOGY_PREFIX": prefix,
            "KTRDR_TRAINER_ID": trainer_id,
            "KTRDR_MODELS_DIR": str(self.models_dir),
            # Shared by the test's trainers, as a volume or bucket is: any of them can resume.
            "KTRDR_ARTIFACTS_URL": str(tmp / "artifacts"),
            "KTRDR_DATA_DIR": str(REPO / "data"),
            "KTRDR_DEVICE": "cpu",
            "KTRDR_TORCH_THREADS": "1",  # 2 shared cores: one thread each is fastest
            "KTRDR_HEARTBEAT_INTERVAL_S": "1",
            "KTRDR_BATCH_PROGRESS_INTERVAL_S": "0",  # every batch: the tests count them
        }
        environment.update({f"KTRDR_{k.upper()}": str(v) for k, v in env.items()})
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(KTRDR), "trainer"],
            cwd=REPO,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def source(self) -> str:
        return f"trainer:{self.trainer_id}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"trainer {self.trainer_id} exited with {self.process.returncode}:\n{self.log()}"
            )

    def log_match(self, pattern: str) -> re.Match[str] | None:
        return re.search(pattern, self.log())

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait(10)

    async def wait_exit(self, within_s: float = 60.0) -> int:
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), within_s)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
