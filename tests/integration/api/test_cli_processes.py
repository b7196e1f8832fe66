"""Real processes: `ktrdr api` (SQLite + in-memory bus) and the client commands against it.
A "trainer" appends its events straight into the same SQLite file from this process; the API
sees them through its store poll (KTRDR_SSE_POLL_S) since they come from another process.
`ktrdr watch` survives an API restart mid-run: it resumes with Last-Event-ID, no gap, no dup."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from libs.events.db import make_engine
from libs.events.store.sql import SqlEventStore
from tests.support.auth import KEY_ENV
from tests.unit.api.conftest import FIXTURES, REPO, tiny_run

pytestmark = pytest.mark.e2e
KTRDR = [str(Path(sys.executable).parent / "ktrdr")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiProcess:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port = workdir, port
        self.url = f"http://127.0.0.1:{port}"
        self.db_url = f"sqlite+aiosqlite:///{workdir / 'ktrdr.db'}"
        self.env = {
            **os.environ,
            "KTRDR_DATABASE_URL": self.db_url,
            "KTRDR_STRATEGIES_DIR": str(workdir / "strategies"),
            "KTRDR_DATA_DIR": str(REPO / "data"),
            "KTRDR_MODELS_DIR": str(workdir / "m"),
            "KTRDR_SSE_POLL_S": "0.1",
            "KTRDR_SSE_KEEPALIVE_S": "1",
            "KTRDR_API_URL": self.url,
            "PYTHONPATH": str(REPO),
            "KTRDR_CONFIG": str(workdir / "no-config.toml"),
            **KEY_ENV,
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*KTRDR, "api", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "ktrdr api exited"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)  # not listening yet: poll the port until the deadline
        raise AssertionError("ktrdr api did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*KTRDR, *args],
            cwd=self.workdir,
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
        )


@pytest.fixture
def api_process(tmp_path: Path):
    (tmp_path / "strategies").mkdir()
    shutil.copy(FIXTURES / "tiny_rsi.yaml", tmp_path / "strategies" / "tiny_rsi.yaml")
    server = ApiProcess(tmp_path, _free_port())
    server.start()
    yield server
    server.stop()


def _append(db_url: str, events) -> None:
    """What the projector of another process would commit."""

    async def append() -> None:
        engine = make_engine(db_url)
        try:
            await SqlEventStore(engine).append(events)
        finally:
            await engine.dispose()

    asyncio.run(append())


def test_client_commands_against_a_real_api(api_process: ApiProcess) -> None:
    api = api_process
    submitted = api.cli("submit", "tiny_rsi", "--epochs", "2", "--idempotency-key", "k1")
    assert submitted.returncode == 0, submitted.stderr
    tid = submitted.stdout.strip()
    again = api.cli("submit", "tiny_rsi", "--epochs", "2", "--idempotency-key", "k1")
    assert again.stdout.strip() == tid
    yaml_file = api.workdir / "strategies" / "tiny_rsi.yaml"
    other = api.cli("submit", str(yaml_file), "--symbols", "EURUSD")
    assert other.returncode == 0, other.stderr
    other_id = other.stdout.strip()

    refused = api.cli("submit", "tiny_rsi", "--symbols", "NOPE")
    assert refused.returncode == 2 and "symbols[0]" in refused.stderr
    unreachable = api.cli("status", tid, "--api-url", "http://127.0.0.1:1")
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr

    assert "queued" in api.cli("status", tid).stdout
    listed = api.cli("list", "--status", "queued")  # short ids: any unique prefix is an id
    assert tid[:8] in listed.stdout and other_id[:8] in listed.stdout
    assert tid not in listed.stdout
    assert "queued" in api.cli("status", tid[:8]).stdout
    wide = api.cli("list", "--status", "queued", "--wide")
    assert tid in wide.stdout and other_id in wide.stdout
    cancelled = api.cli("cancel", other_id)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout  # queued: final at once

    # Watch, restart the API half-way, finish the run: the watcher resumes without gap/dup.
    events = tiny_run(tid, epochs=2, batches=3)
    half = len(events) // 2
    watcher = subprocess.Popen(
        [*KTRDR, "watch", tid, "--json"],
        cwd=api.workdir,
        env=api.env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first = json.loads(watcher.stdout.readline())
        assert first["type"] == "TrainingRequested"
        _append(api.db_url, events[:half])
        seen = [first] + [json.loads(watcher.stdout.readline()) for _ in range(half)]
        api.stop()
        _append(api.db_url, events[half:])
        api.start()
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    seen += [json.loads(line) for line in out.splitlines() if line.strip()]
    assert watcher.returncode == 0, err
    positions = [e["position"] for e in seen]
    assert positions == sorted(set(positions))
    assert [e["event_id"] for e in seen[1:]] == [str(e.event_id) for e in events]

    status = api.cli("status", tid, "--json")
    assert json.loads(status.stdout)["status"] == "completed"
    again = api.cli("cancel", tid)
    assert again.returncode == 2 and "already completed" in again.stderr


def test_keys_commands_and_a_revoke_seen_at_once_by_a_second_api_process(tmp_path: Path) -> None:
    """Two real `ktrdr api` processes on one database: a key made through the first and revoked
    through `ktrdr keys revoke --local` fails on the very next request to the second."""
    (tmp_path / "strategies").mkdir()
    first = ApiProcess(tmp_path, _free_port())
    first.start()
    second = ApiProcess(tmp_path, _free_port())
    try:
        second.start()
        made = first.cli("keys", "create", "ci-bot", "--role", "reader", "--tenant", "acme")
        assert made.returncode == 0, made.stderr
        key = next(line for line in made.stdout.splitlines() if line.startswith("ktrdr_"))
        key_id = key.split("_")[1]
        listed = first.cli("keys", "list", "--tenant", "acme")
        assert key_id in listed.stdout and "reader" in listed.stdout and "active" in listed.stdout
        assert key not in listed.stdout  # a key is shown once, never listed

        def status(server: ApiProcess) -> int:
            headers = {"Authorization": f"Bearer {key}"}
            return httpx.get(f"{server.url}/api/v1/trainings", headers=headers).status_code

        assert status(first) == status(second) == 200
        # A reader key cannot manage keys; without any key nothing but the probes answers.
        refused = first.cli("keys", "list", "--api-key", key)
        assert refused.returncode == 2 and "admin" in refused.stderr
        assert httpx.get(f"{second.url}/api/v1/trainings").status_code == 401

        revoked = first.cli("keys", "revoke", key_id, "--local", "--database-url", first.db_url)
        assert revoked.returncode == 0, revoked.stderr
        assert status(second) == 401 and status(first) == 401
        state = first.cli("keys", "list", "--local", "--database-url", first.db_url)
        assert any(key_id in line and "revoked" in line for line in state.stdout.splitlines())
    finally:
        second.stop()
        first.stop()
