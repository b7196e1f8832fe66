"""Models that travel, with real processes: a trainer whose KTRDR_MODELS_DIR is not the API's
(they share no models folder) publishes its model to the artifact store; the API lists it,
serves its download with the sha256 `Completed` announced, and predicts with it; `ktrdr models
list` asks the API. Once with the filesystem store (a shared volume), once with S3 against a
real S3-compatible server started here (moto's). And a trainer killed in the middle of its
upload leaves nothing listed: the redelivered request's next trainer publishes the model.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import re
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import POSTGRES_HOST, POSTGRES_PORT
from tests.e2e.conftest import AMQP_URL, create_database, delete_topology, drop_database
from tests.e2e.harness import (
    FIXTURES,
    KTRDR,
    REPO,
    Process,
    SseReader,
    base_env,
    diagnose,
    free_port,
    history,
    migrate,
    submit,
    wait_ready,
)
from tests.support.auth import AUTH
from tests.support.s3 import S3_ENV, S3Server, s3_server

pytestmark = pytest.mark.e2e

TRAINING_S = 240.0


class StallingS3Proxy:
    """A pass-through HTTP proxy in front of the S3 server that, once armed, stalls the next
    upload of a model artifact halfway through its body (and never forwards it): the moment to
    kill a trainer mid-upload."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.armed = threading.Event()
        self.stalled = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                path = urlsplit(self.path).path
                if (
                    self.command == "PUT"
                    and proxy.armed.is_set()
                    and re.search(r"/models/.+\.tar$", path)
                ):
                    self.rfile.read(length // 2)
                    proxy.armed.clear()
                    proxy.stalled.set()
                    proxy.release.wait(120)
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
                upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in self.headers.items():
                    if name.lower() not in ("expect", "connection", "keep-alive"):
                        upstream.putheader(name, value)
                upstream.endheaders(body)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                head = self.command == "HEAD"  # its Content-Length is the object's size
                for name, value in answer.getheaders():
                    skipped = (
                        "transfer-encoding",
                        "connection",
                        *(() if head else ("content-length",)),
                    )
                    if name.lower() not in skipped:
                        self.send_header(name, value)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Rig:
    backend: str
    api_url: str
    work: Path
    api_models: Path
    trainer_models: Path
    env: dict[str, str]
    trainer_env: dict[str, str]
    processes: list[Process]
    s3: S3Server | None = None
    bucket: str | None = None
    proxy: StallingS3Proxy | None = None
    trainers_started: int = field(default=0)

    def diagnose(self) -> str:
        return diagnose(self.processes)

    def start_trainer(self) -> Process:
        self.trainers_started += 1
        name = f"trainer-{self.backend}-{self.trainers_started}"
        trainer_cwd = self.work / "trainer-host"
        trainer_cwd.mkdir(exist_ok=True)
        process = Process(
            name,
            ["trainer"],
            cwd=trainer_cwd,
            logs=self.work,
            env={**self.trainer_env, "KTRDR_TRAINER_ID": name, "KTRDR_DEVICE": "cpu"},
        )
        self.processes.append(process)
        return process

    def bucket_keys(self, prefix: str = "store/models/") -> list[str]:
        """The model artifacts in the bucket (checkpoints live beside them, under their own
        prefix)."""
        assert self.s3 is not None and self.bucket is not None
        listed = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", ()))


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def rig(
    request: pytest.FixtureRequest,
    postgres_available: None,
    rabbitmq_available: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Rig]:
    backend: str = request.param
    work = tmp_path_factory.mktemp(f"travel-{backend}")
    database = f"e2e_{uuid.uuid4().hex[:12]}"
    database_url = f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"
    prefix = f"e2e.{uuid.uuid4().hex[:10]}."
    port = free_port()
    (work / "strategies").mkdir()
    shutil.copy(FIXTURES / "e2e_tiny.yaml", work / "strategies" / "e2e_tiny.yaml")
    with s3_server() if backend == "s3" else _nothing() as s3:
        common = {
            "KTRDR_BROKER_URL": AMQP_URL,
            "KTRDR_TOPOLOGY_PREFIX": prefix,
            "KTRDR_DATA_DIR": str(REPO / "data"),
            "KTRDR_TORCH_THREADS": "1",
            "KTRDR_HEARTBEAT_INTERVAL_S": "1",
            "KTRDR_BATCH_PROGRESS_INTERVAL_S": "0.2",
        }
        proxy = bucket = None
        if s3 is None:
            shared = str(work / "shared-artifacts")  # a volume both hosts mount
            api_artifacts = trainer_artifacts = {"KTRDR_ARTIFACTS_URL": shared}
        else:
            bucket = s3.new_bucket()
            proxy = StallingS3Proxy(s3.endpoint_url)
            url = {"KTRDR_ARTIFACTS_URL": f"s3://{bucket}/store", **S3_ENV}
            api_artifacts = {**url, "KTRDR_ARTIFACTS_S3_ENDPOINT_URL": s3.endpoint_url}
            trainer_artifacts = {**url, "KTRDR_ARTIFACTS_S3_ENDPOINT_URL": proxy.url}
        env = base_env(
            **common,
            **api_artifacts,
            KTRDR_DATABASE_URL=database_url,
            KTRDR_MODELS_DIR=str(work / "api-models"),
            KTRDR_STRATEGIES_DIR=str(work / "strategies"),
            KTRDR_SSE_KEEPALIVE_S="5",
        )
        # The trainer's environment has no database and its own models folder.
        trainer_env = base_env(
            **common, **trainer_artifacts, KTRDR_MODELS_DIR=str(work / "trainer-models")
        )
        asyncio.run(create_database(database))
        processes: list[Process] = []
        rig = Rig(
            backend,
            f"http://127.0.0.1:{port}",
            work,
            work / "api-models",
            work / "trainer-models",
            env,
            trainer_env,
            processes,
            s3,
            bucket,
            proxy,
        )
        try:
            migrate(env, work)
            processes.append(
                Process("api", ["api", "--port", str(port)], env=env, cwd=work, logs=work)
            )
            processes.append(Process("projector", ["projector"], env=env, cwd=work, logs=work))
            rig.start_trainer()
            asyncio.run(wait_ready(rig.api_url, processes))
            yield rig
        finally:
            for process in processes:
                process.stop()
            if proxy is not None:
                proxy.close()
            asyncio.run(delete_topology(prefix))
            asyncio.run(drop_database(database))


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def _completed(client: httpx.AsyncClient, rig: Rig, training_id: str) -> dict[str, Any]:
    try:
        async with SseReader(client, f"/api/v1/trainings/{training_id}/events") as reader:
            events = await reader.to_end(within_s=TRAINING_S)
    except TimeoutError:
        raise AssertionError(f"{training_id} did not finish\n{rig.diagnose()}") from None
    assert events[-1].event == "Completed", (events[-1].data, rig.diagnose())
    (completed,) = [e for e in await history(client, training_id) if e["type"] == "Completed"]
    return completed


def _ktrdr(rig: Rig, *args: str, api: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**rig.env, "KTRDR_API_URL": rig.api_url} if api else rig.env
    cwd = rig.work / "cli-host"
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [str(KTRDR), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


async def test_a_model_trained_elsewhere_is_listed_downloaded_and_predicted(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.api_url, headers=AUTH, timeout=30) as client:
        training_id = await submit(client, epochs=1)
        completed = await _completed(client, rig, training_id)
        model = completed["model"]
        artifact = model["artifact"]
        assert artifact is not None, completed
        lineage = model["lineage"]
        assert lineage["training_id"] == training_id and lineage["tenant"] == "default"
        assert lineage["symbols"] == ["EURUSD"] and lineage["seed"] == 7
        assert lineage["data_files"] and lineage["strategy_sha256"]
        assert lineage["overrides"] == {"epochs": 1}

        # Listed by the API, from the registry.
        items = (await client.get("/api/v1/models")).json()["items"]
        mine = [i for i in items if i["training_id"] == training_id]
        assert [(i["name"], i["artifact"]["sha256"]) for i in mine] == [
            (f"{model['timeframe']}_v{model['version']}", artifact["sha256"])
        ]
        assert "latest" in mine[0]["aliases"]

        # Downloaded with the sha256 Completed announced.
        name = mine[0]["name"]
        download = await client.get(f"/api/v1/models/e2e_tiny/{name}/download")
        assert download.status_code == 200, download.text
        assert download.headers["x-checksum-sha256"] == artifact["sha256"]
        assert hashlib.sha256(download.content).hexdigest() == artifact["sha256"]

        # Predicted through the API: no champion, so latest, and it says so.
        predicted = await client.post(
            "/api/v1/models/e2e_tiny/predict", json={"symbol": "EURUSD", "bars": 3}
        )
        assert predicted.status_code == 200, predicted.text
        resolved = predicted.json()["resolved"]
        assert (resolved["name"], resolved["via"]) == (name, "latest (default)")
        assert len(predicted.json()["predictions"]) == 3

    # The two hosts shared no models folder: the trainer kept its copy, the API only a cache.
    assert (rig.trainer_models / "tenants" / "default" / "e2e_tiny").is_dir()
    assert not (rig.api_models / "tenants").exists()
    assert any((rig.api_models / ".artifact-cache").iterdir())
    if rig.backend == "s3":
        assert f"store/{artifact['key']}" in rig.bucket_keys()
        assert artifact["uri"] == f"s3://{rig.bucket}/store/{artifact['key']}"

    # The CLI, against the remote API.
    listed = _ktrdr(rig, "models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "e2e_tiny" in listed.stdout and name in listed.stdout
    assert training_id[:8] in listed.stdout
    local = _ktrdr(rig, "models", "list", api=False)  # no KTRDR_API_URL: the local folder
    assert local.returncode == 0 and "no models in" in local.stdout
    pulled = _ktrdr(rig, "models", "pull", "e2e_tiny", name, "--out", str(rig.work / "pulled"))
    assert pulled.returncode == 0, pulled.stderr
    assert artifact["sha256"] in pulled.stdout
    assert (rig.work / "pulled" / f"e2e_tiny_{name}" / "model.pt").is_file()
    if rig.backend != "filesystem":
        return  # the rest is the CLI's, whatever the store: once is enough
    aliased = _ktrdr(rig, "models", "alias", "set", "e2e_tiny", "champion", name)
    assert aliased.returncode == 0 and f"champion -> {name}" in aliased.stdout, aliased.stderr
    shown = _ktrdr(rig, "models", "show", "e2e_tiny", "champion")
    assert shown.returncode == 0, shown.stderr
    assert training_id in shown.stdout and artifact["sha256"] in shown.stdout
    compared = _ktrdr(rig, "models", "compare", f"e2e_tiny/{name}", "e2e_tiny/champion")
    assert compared.returncode == 0 and "*" not in compared.stdout, compared.stdout
    predicted = _ktrdr(rig, "models", "predict", "e2e_tiny", "--symbol", "EURUSD", "--bars", "2")
    assert predicted.returncode == 0, predicted.stderr
    assert "used champion" in predicted.stdout
    refused = _ktrdr(rig, "models", "alias", "set", "e2e_tiny", "latest", name)
    assert refused.returncode == 2 and "alias" in refused.stderr


async def test_a_trainer_killed_mid_upload_leaves_nothing_listed(rig: Rig) -> None:
    if rig.proxy is None:
        pytest.skip("the upload is stalled by a proxy in front of the S3 server")
    proxy = rig.proxy
    trainer = next(p for p in reversed(rig.processes) if p.name.startswith("trainer"))
    async with httpx.AsyncClient(base_url=rig.api_url, headers=AUTH, timeout=30) as client:
        before = (await client.get("/api/v1/models")).json()["items"]
        keys_before = rig.bucket_keys()
        proxy.armed.set()
        training_id = await submit(client, epochs=1)
        loop = asyncio.get_running_loop()
        stalled = await loop.run_in_executor(None, proxy.stalled.wait, TRAINING_S)
        assert stalled, f"the upload never started\n{rig.diagnose()}"
        trainer.popen.send_signal(signal.SIGKILL)
        trainer.popen.wait(30)
        proxy.release.set()

        # Half an artifact is no artifact: nothing new in the bucket, nothing listed, and the
        # training is not completed.
        assert rig.bucket_keys() == keys_before
        assert (await client.get("/api/v1/models")).json()["items"] == before
        state = (await client.get(f"/api/v1/trainings/{training_id}")).json()
        assert state["status"] in ("queued", "running"), state

        # The broker hands the request to the next trainer, which publishes the model.
        proxy.stalled.clear()
        proxy.release.clear()
        rig.start_trainer()
        completed = await _completed(client, rig, training_id)
        artifact = completed["model"]["artifact"]
        items = (await client.get("/api/v1/models")).json()["items"]
        assert [i for i in items if i["training_id"] == training_id][0]["artifact"] == artifact
        assert f"store/{artifact['key']}" in rig.bucket_keys()
        assert completed["attempt"] >= 2
