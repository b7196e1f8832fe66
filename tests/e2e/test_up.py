"""`ktrdr up` with no configuration at all: a tmp working directory holding only `strategies/`
and `data/`, an environment of PATH and HOME, and a port. It must create and migrate its SQLite
database, run a training submitted over HTTP to completion, and stop cleanly on SIGTERM; killed
with -9 mid-run and started again, it settles what the dead process left."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import (
    FIXTURES,
    KTRDR,
    REPO,
    Process,
    SseReader,
    base_env,
    free_port,
    submit,
    wait_ready,
)
from tests.support.auth import AUTH

pytestmark = pytest.mark.e2e
RUN_S = 180.0


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "strategies").mkdir()
    shutil.copy(FIXTURES / "e2e_tiny.yaml", tmp_path / "strategies" / "e2e_tiny.yaml")
    (tmp_path / "data").symlink_to(REPO / "data")
    return tmp_path


def start_up(workdir: Path, port: int, name: str = "up") -> Process:
    return Process(name, ["up", "--port", str(port)], env=base_env(), cwd=workdir, logs=workdir)


async def announced_url(process: Process, within_s: float = 90.0) -> str:
    """The URL `ktrdr up` prints once it serves."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while (match := re.search(r"http://127\.0\.0\.1:\d+", process.log())) is None:
        process.check_alive()
        if loop.time() > deadline:
            raise AssertionError(f"no URL printed within {within_s}s:\n{process.tail()}")
        await asyncio.sleep(0.1)  # the log file is all there is to wait on
    return match.group(0)


async def exit_code(process: Process, within_s: float = 30.0) -> int:
    return await asyncio.wait_for(asyncio.to_thread(process.popen.wait), within_s)


async def test_up_with_no_configuration_trains_and_stops_cleanly(workdir: Path):
    port = free_port()
    up = start_up(workdir, port)
    try:
        url = await announced_url(up)
        assert url == f"http://127.0.0.1:{port}"
        await wait_ready(url, [up])
        async with httpx.AsyncClient(headers=AUTH, base_url=url, timeout=30) as client:
            training_id = await submit(client, epochs=2)
            async with SseReader(client, f"/api/v1/trainings/{training_id}/events") as sse:
                events = await sse.to_end(RUN_S)
            view = (await client.get(f"/api/v1/trainings/{training_id}")).json()
            scraped = await client.get("/metrics", headers={"Authorization": ""})
        assert events[-1].event == "Completed", [e.event for e in events]
        assert view["status"] == "completed" and view["position"] == events[-1].id
        check_metrics_after_one_training(scraped, events)
        assert (workdir / "var" / "ktrdr.db").is_file()  # created and migrated on start
        # Saved in the tenant's own tree (the bootstrap admin's tenant), not beside `ktrdr
        # train`'s strategy folders.
        assert (workdir / "models" / "tenants" / "default" / "e2e_tiny").is_dir()
        assert not (workdir / "models" / "e2e_tiny").exists()
        up.popen.send_signal(signal.SIGTERM)
        assert await exit_code(up) == 0, up.tail()
    finally:
        up.stop()


def check_metrics_after_one_training(scraped: httpx.Response, events: list) -> None:
    """The named series, with the values one completed training must have left."""
    assert scraped.status_code == 200, scraped.text  # open without a key, for Prometheus
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}

    def value(name: str, **labels: str) -> float:
        found = [
            s.value
            for family in families.values()
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert found, (name, labels)
        return sum(found)

    folded = [e.event for e in events if e.event not in ("TrainingRequested", "CancelRequested")]
    route = "/api/v1/trainings"
    assert value("ktrdr_http_requests_total", method="POST", route=route, status="202") == 1
    assert value("ktrdr_events_appended_total", type="TrainingRequested", source="api") == 1
    assert value("ktrdr_events_folded_total", type="Completed") == 1
    assert value("ktrdr_events_folded_total", type="BatchProgress") >= 1
    assert value("ktrdr_trainings_finished_total", status="completed") == 1
    assert value("ktrdr_trainings", status="running") == 0
    assert value("ktrdr_trainings", status="queued") == 0
    lag_count = value("ktrdr_projector_lag_seconds_count")
    assert lag_count >= len(folded)
    assert 0 <= value("ktrdr_projector_lag_seconds_sum") / lag_count < 30  # seconds, on average
    assert value("ktrdr_projector_batch_size_count") >= 1
    assert value("ktrdr_projector_batch_size_sum") >= len(folded)
    assert value("ktrdr_relay_publish_seconds_count") >= 1
    assert value("ktrdr_relay_backlog") >= 0
    assert value("ktrdr_sse_events_sent_total") >= len(events)
    assert value("ktrdr_sse_subscribers") in (0, 1)  # the stream read to its end is closing
    assert value("ktrdr_trainer_slots", device="cpu") == 1
    assert value("ktrdr_trainer_busy_slots", device="cpu") == 0
    assert value("ktrdr_trainer_samples_per_second") > 0
    for declared in ("ktrdr_dead_letters", "ktrdr_checkpoint_seconds"):
        assert declared in families  # declared; no samples until something is parked / saved


async def test_up_restarted_after_kill_9_settles_what_was_left(workdir: Path):
    port = free_port()
    up = start_up(workdir, port, "up-1")
    try:
        url = await announced_url(up)
        await wait_ready(url, [up])
        async with httpx.AsyncClient(headers=AUTH, base_url=url, timeout=30) as client:
            running = await submit(client, epochs=12)
            queued = await submit(client, epochs=2)  # waits: the one trainer is busy
            async with SseReader(client, f"/api/v1/trainings/{running}/events") as sse:
                await sse.until(
                    lambda e: e.event == "EpochCompleted" and e.data["epoch"] >= 2, RUN_S
                )
            assert (await client.get(f"/api/v1/trainings/{queued}")).json()["status"] == "queued"
        up.popen.kill()
        up.popen.wait(10)
    finally:
        up.stop()

    again = start_up(workdir, port, "up-2")
    try:
        url = await announced_url(again)
        await wait_ready(url, [again])
        async with httpx.AsyncClient(headers=AUTH, base_url=url, timeout=30) as client:
            async with SseReader(client, f"/api/v1/trainings/{running}/events") as sse:
                events = await sse.to_end(RUN_S)  # resumed from its checkpoint
            resumed = [e for e in events if e.event == "Started"][-1].data
            assert resumed["attempt"] == 2 and resumed["resume_epoch"] >= 3
            epochs = [
                e.data["epoch"]
                for e in events
                if e.event == "EpochCompleted" and e.data["attempt"] == 2
            ]
            assert epochs[0] == resumed["resume_epoch"] and epochs[-1] == 12
            assert events[-1].event == "Completed", [e.event for e in events]
            async with SseReader(client, f"/api/v1/trainings/{queued}/events") as sse:
                events = await sse.to_end(RUN_S)  # published again, so it runs now
        assert events[-1].event == "Completed", [e.event for e in events]
        assert "1 running trainings resume from their checkpoints" in again.log()
        again.popen.send_signal(signal.SIGINT)
        assert await exit_code(again) == 0, again.tail()
    finally:
        again.stop()


async def test_a_second_up_on_the_same_database_refuses_and_the_first_keeps_training(
    workdir: Path,
):
    port = free_port()
    up = start_up(workdir, port, "up-owner")
    try:
        url = await announced_url(up)
        await wait_ready(url, [up])
        async with httpx.AsyncClient(headers=AUTH, base_url=url, timeout=30) as client:
            training_id = await submit(client, epochs=30)
            async with SseReader(client, f"/api/v1/trainings/{training_id}/events") as sse:
                await sse.until(lambda e: e.event == "BatchProgress", RUN_S)
                second = await asyncio.to_thread(
                    subprocess.run,
                    [str(KTRDR), "up", "--port", str(free_port())],
                    env=base_env(),
                    cwd=workdir,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                events = await sse.to_end(RUN_S)
        assert second.returncode != 0
        assert "in use by another ktrdr process" in second.stderr
        assert f"pid {up.popen.pid}" in second.stderr, second.stderr
        assert events[-1].event == "Completed", [e.event for e in events]
    finally:
        up.stop()


async def test_cancel_of_a_training_no_trainer_serves_is_final_at_once_and_watch_exits(
    workdir: Path,
):
    """`ktrdr up` runs a CPU trainer only: a `cuda` request waits for a trainer that never
    comes. Its cancel must not wait for one."""
    port = free_port()
    up = start_up(workdir, port, "up-cancel")
    watch: Process | None = None
    try:
        url = await announced_url(up)
        await wait_ready(url, [up])
        async with httpx.AsyncClient(headers=AUTH, base_url=url, timeout=30) as client:
            training_id = await submit(client, epochs=2, device="cuda")
            watch = Process(
                "watch",
                ["watch", training_id],
                env=base_env(KTRDR_API_URL=url),
                cwd=workdir,
                logs=workdir,
            )
            async with SseReader(client, f"/api/v1/trainings/{training_id}/events") as sse:
                await sse.until(lambda e: e.event == "TrainingRequested", 30)
                asked = asyncio.get_running_loop().time()
                answer = await client.post(f"/api/v1/trainings/{training_id}/cancel")
                ended = await sse.until(lambda e: e.event == "Cancelled", 5)
                took = asyncio.get_running_loop().time() - asked
            view = (await client.get(f"/api/v1/trainings/{training_id}")).json()
        assert answer.status_code == 202 and answer.json()["status"] == "cancelled"
        assert took < 1.0, took
        assert view["status"] == "cancelled" and view["started_at"] is None
        assert "reason" in ended.data
        assert await exit_code(watch) == 130, watch.tail()
    finally:
        if watch is not None:
            watch.stop()
        up.stop()


async def test_up_on_a_busy_port_says_so(workdir: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = await asyncio.to_thread(
            subprocess.run,
            [str(KTRDR), "up", "--port", str(port)],
            env=base_env(),
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr and "KTRDR_PORT" in result.stderr


@pytest.mark.integration
async def test_up_on_postgres_and_rabbitmq_needs_the_schema_then_trains(
    workdir: Path, postgres_available, rabbitmq_available
):
    from tests.conftest import POSTGRES_HOST, POSTGRES_PORT
    from tests.e2e.conftest import AMQP_URL, create_database, delete_topology, drop_database

    database = f"e2e_up_{uuid.uuid4().hex[:10]}"
    prefix = f"e2e.up.{uuid.uuid4().hex[:8]}."
    env = base_env(
        KTRDR_DATABASE_URL=f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/"
        f"{database}",
        KTRDR_BROKER_URL=AMQP_URL,
        KTRDR_TOPOLOGY_PREFIX=prefix,
    )
    await create_database(database)
    port = free_port()
    try:
        unmigrated = await asyncio.to_thread(
            subprocess.run,
            [str(KTRDR), "up", "--port", str(port)],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert unmigrated.returncode == 2
        assert "ktrdr db upgrade" in unmigrated.stderr

        migrated = await asyncio.to_thread(
            subprocess.run,
            [str(KTRDR), "db", "upgrade"],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr
        up = Process("up-pg", ["up", "--port", str(port)], env=env, cwd=workdir, logs=workdir)
        try:
            url = await announced_url(up)
            await wait_ready(url, [up])
            async with httpx.AsyncClient(headers=AUTH, base_url=url, timeout=30) as client:
                training_id = await submit(client, epochs=2)
                async with SseReader(client, f"/api/v1/trainings/{training_id}/events") as sse:
                    events = await sse.to_end(RUN_S)
            assert events[-1].event == "Completed", [e.event for e in events]
            assert not (workdir / "var").exists()  # no SQLite on the side
            up.popen.send_signal(signal.SIGTERM)
            assert await exit_code(up) == 0, up.tail()
        finally:
            up.stop()
    finally:
        await delete_topology(prefix)
        await drop_database(database)


def no_key_env() -> dict[str, str]:
    """A first-time user's environment: no bootstrap key, no CLI key, no config file."""
    env = base_env()
    for name in ("KTRDR_BOOTSTRAP_API_KEY", "KTRDR_API_KEY"):
        env.pop(name)
    return env


async def test_up_prints_an_admin_key_on_the_first_start_only_and_it_works(workdir: Path):
    port = free_port()
    up = Process(
        "up-first", ["up", "--port", str(port)], env=no_key_env(), cwd=workdir, logs=workdir
    )
    try:
        url = await announced_url(up)
        await wait_ready(url, [up])
        printed = re.findall(r"ktrdr_[0-9a-f]{16}_[A-Za-z0-9_-]{32,}", up.log())
        assert len(printed) == 1, up.log()
        assert "KTRDR_API_KEY" in up.log()
        key = printed[0]
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert (await client.get("/api/v1/trainings")).status_code == 401
            headers = {"Authorization": f"Bearer {key}"}
            assert (await client.get("/api/v1/keys", headers=headers)).json()["items"][0][
                "role"
            ] == "admin"
    finally:
        assert up.stop() == 0
    again = Process(
        "up-second", ["up", "--port", str(port)], env=no_key_env(), cwd=workdir, logs=workdir
    )
    try:
        url = await announced_url(again)
        await wait_ready(url, [again])
        assert re.search(r"ktrdr_[0-9a-f]{16}_", again.log()) is None, again.log()
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            headers = {"Authorization": f"Bearer {key}"}
            assert (await client.get("/api/v1/trainings", headers=headers)).status_code == 200
    finally:
        again.stop()
