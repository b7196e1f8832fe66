"""The whole service on private servers, for injecting faults: a private Postgres cluster and a
private RabbitMQ node (tests/support/private_servers.py), `ktrdr api`, `ktrdr projector` and two
`ktrdr trainer`s as real processes, plus the test's own durable tap on the events exchange.

The tap is a quorum queue bound to every training event, so it holds every event the broker
confirmed to a publisher (a trainer, the relay), even across a broker kill: what the suite
compares the log with. Every wait polls an observable state (the API's answers, a process's
exit) with a deadline, and a timeout shows the tail of every process's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from libs.events.bus.messages import RawMessage
from libs.events.bus.topology import Topology
from libs.events.catalog import Event
from libs.events.settings import DatabaseSettings
from libs.events.store.sql import SqlEventStore
from services.bootstrap import open_stack
from tests.e2e.harness import FIXTURES, REPO, Process, base_env, diagnose, free_port, migrate
from tests.reliability.invariants import Expectations, violations
from tests.support.auth import AUTH
from tests.support.private_servers import PrivatePostgres, PrivateRabbit

TRAINERS = ("rel-trainer-a", "rel-trainer-b")
TERMINAL = {"completed", "failed", "cancelled"}
POLL_S = 0.2  # the API is the observable here: there is nothing to wait on but its answers


@dataclass
class Rig:
    work: Path
    postgres: PrivatePostgres
    rabbit: PrivateRabbit
    env: dict[str, str]
    api_url: str
    topology: Topology
    processes: dict[str, Process] = field(default_factory=dict)
    expect: Expectations = field(default_factory=Expectations)
    _spawned: int = 0

    # --- processes ---------------------------------------------------------------------------

    def start_process(self, name: str, args: list[str], **env: str) -> Process:
        self._spawned += 1
        process = Process(
            f"{name}.{self._spawned}",
            args,
            env={**self.env, **env},
            cwd=self.work,
            logs=self.work,
        )
        self.processes[name] = process
        return process

    def start_trainer(self, trainer_id: str) -> Process:
        return self.start_process(
            trainer_id, ["trainer"], KTRDR_TRAINER_ID=trainer_id, KTRDR_DEVICE="cpu"
        )

    def diagnose(self) -> str:
        return diagnose(list(self.processes.values()))

    def check_alive(self) -> None:
        for process in self.processes.values():
            process.check_alive()

    # --- HTTP --------------------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(headers=AUTH, base_url=self.api_url, timeout=30)

    async def submit(self, client: httpx.AsyncClient, epochs: int, **extra: Any) -> str:
        body = {
            "strategy": "e2e_tiny",
            "start_date": "2017-01-02",
            "end_date": "2017-03-31",
            "overrides": {"epochs": epochs},
            "seed": 7,
            **extra,
        }
        response = await self.until_answered(client, "POST", "/api/v1/trainings", json=body)
        assert response.status_code == 202, response.text
        training_id: str = response.json()["training_id"]
        self.expect.trainings.add(training_id)
        return training_id

    async def cancel(self, client: httpx.AsyncClient, training_id: str) -> int:
        response = await self.until_answered(
            client, "POST", f"/api/v1/trainings/{training_id}/cancel", json={"reason": "test"}
        )
        assert response.status_code in (202, 409), response.text
        if response.status_code == 202:
            self.expect.cancelled.add(training_id)
        return response.status_code

    async def until_answered(
        self, client: httpx.AsyncClient, method: str, path: str, within_s: float = 60, **kw: Any
    ) -> httpx.Response:
        """The request, retried while the API answers 503 (a dependency is down) or not at all."""

        async def attempt() -> httpx.Response | None:
            try:
                response = await client.request(method, path, **kw)
            except httpx.TransportError:
                return None
            return None if response.status_code == 503 else response

        return await self.poll(attempt, within_s, f"{method} {path} answered")

    async def view(self, client: httpx.AsyncClient, training_id: str) -> dict[str, Any]:
        response = await self.until_answered(client, "GET", f"/api/v1/trainings/{training_id}")
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    async def until_view(
        self,
        client: httpx.AsyncClient,
        training_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        within_s: float = 180,
        what: str = "the awaited state",
    ) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            view = await self.view(client, training_id)
            return view if predicate(view) else None

        return await self.poll(check, within_s, f"{training_id}: {what}")

    async def until_training(self, client: httpx.AsyncClient, training_id: str) -> dict[str, Any]:
        """Running and past its first batch: mid-epoch."""
        return await self.until_view(
            client,
            training_id,
            lambda v: v["status"] == "running" and (v.get("batch") or 0) > 0,
            what="running, past a batch",
        )

    async def until_terminal(
        self, client: httpx.AsyncClient, training_ids: list[str], within_s: float = 300
    ) -> dict[str, dict[str, Any]]:
        views: dict[str, dict[str, Any]] = {}
        for training_id in training_ids:
            views[training_id] = await self.until_view(
                client, training_id, lambda v: v["status"] in TERMINAL, within_s, "terminal"
            )
        return views

    async def until_ready(self, within_s: float = 120) -> None:
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5) as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await self.poll(ready, within_s, "/readyz answers 200")

    async def until_not_ready(self, within_s: float = 60) -> None:
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5) as client:

            async def down() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 503
                except httpx.TransportError:
                    return False

            await self.poll(down, within_s, "/readyz answers 503")

    async def poll(self, check: Callable[[], Awaitable[Any]], within_s: float, what: str) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            result = await check()
            if result:
                return result
            if loop.time() > deadline:
                raise AssertionError(f"not within {within_s}s: {what}\n{self.diagnose()}")
            await asyncio.sleep(POLL_S)

    # --- the log and the invariants -----------------------------------------------------------

    async def confirmed_events(self) -> list[Event]:
        """Everything the tap holds: every event the broker confirmed since the rig started."""
        events: list[Event] = []
        connection = await aio_pika.connect(self.rabbit.url)
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(self.tap_queue, ensure=False)
            while (message := await queue.get(no_ack=False, fail=False, timeout=10)) is not None:
                raw = RawMessage(
                    queue=self.tap_queue,
                    routing_key=message.routing_key or "",
                    body=message.body,
                    redelivered=bool(message.redelivered),
                    headers=dict(message.headers or {}),
                    type=message.type,
                    message_id=message.message_id,
                )
                # A poison message a test published on purpose is no event: skipped.
                with contextlib.suppress(ValueError):
                    events.append(raw.to_delivery().event)
            # Left unacked: closing the channel puts them back for the next check.
        finally:
            await connection.close()
        return events

    @property
    def tap_queue(self) -> str:
        return f"{self.topology.prefix}reliability.tap"

    async def check(self) -> None:
        """Every invariant of the suite over everything the rig has seen so far."""
        confirmed = await self.confirmed_events()
        async with open_stack(
            database=DatabaseSettings(database_url=self.postgres.url), notifier=False
        ) as stack:
            store = stack.store
            assert isinstance(store, SqlEventStore)
            found = await violations(store, confirmed, self.expect)
        assert not found, "\n".join(found) + "\n" + self.diagnose()


async def declare_tap(rig: Rig) -> None:
    connection = await aio_pika.connect(rig.rabbit.url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            rig.topology.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            rig.tap_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(exchange, routing_key="training.#")
    finally:
        await connection.close()


async def _until_trainers_seen(rig: Rig) -> None:
    async with open_stack(
        database=DatabaseSettings(database_url=rig.postgres.url), notifier=False
    ) as stack:

        async def seen() -> bool:
            rig.check_alive()
            return {t.trainer_id for t in await stack.store.list_trainers()} >= set(TRAINERS)

        await rig.poll(seen, 120, "both trainers' heartbeats in the trainers table")


def start_rig(work: Path) -> Rig:
    """Servers, schema, processes; the caller stops it with `stop_rig` whatever happens."""
    postgres = PrivatePostgres()
    rabbit = PrivateRabbit()
    try:
        postgres.start()
        rabbit.start()
        return _start_services(work, postgres, rabbit)
    except BaseException:
        rabbit.destroy()
        postgres.destroy()
        raise


def _start_services(work: Path, postgres: PrivatePostgres, rabbit: PrivateRabbit) -> Rig:
    (work / "strategies").mkdir()
    shutil.copy(FIXTURES / "e2e_tiny.yaml", work / "strategies" / "e2e_tiny.yaml")
    topology = Topology(prefix=f"rel.{uuid.uuid4().hex[:8]}.")
    port = free_port()
    env = base_env(
        KTRDR_DATABASE_URL=postgres.url,
        # Short AMQP heartbeats: a stopped (SIGSTOP) trainer loses its deliveries in seconds.
        KTRDR_BROKER_URL=f"{rabbit.url}?heartbeat=4",
        KTRDR_TOPOLOGY_PREFIX=topology.prefix,
        KTRDR_MODELS_DIR=str(work / "models"),
        KTRDR_DATA_DIR=str(REPO / "data"),
        KTRDR_STRATEGIES_DIR=str(work / "strategies"),
        KTRDR_TORCH_THREADS="1",
        KTRDR_HEARTBEAT_INTERVAL_S="1",
        KTRDR_BATCH_PROGRESS_INTERVAL_S="0.05",
        KTRDR_SHUTDOWN_GRACE_S="1",
        KTRDR_SSE_KEEPALIVE_S="2",
    )
    rig = Rig(work, postgres, rabbit, env, f"http://127.0.0.1:{port}", topology)
    migrate(env, work)
    try:
        rig.start_process("api", ["api", "--port", str(port)])
        rig.start_process("projector", ["projector"])
        for trainer_id in TRAINERS:
            rig.start_trainer(trainer_id)
        asyncio.run(rig.until_ready())
        asyncio.run(declare_tap(rig))
        asyncio.run(_until_trainers_seen(rig))
    except BaseException:
        for process in rig.processes.values():
            process.stop()
        raise
    return rig


def stop_rig(rig: Rig) -> None:
    for process in rig.processes.values():
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGCONT)  # a trainer a test left stopped
        process.stop()
    rig.rabbit.destroy()
    rig.postgres.destroy()
