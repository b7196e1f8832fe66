"""docker-compose.yml, Dockerfile and .dockerignore, checked without a Docker engine: the
services are there and wired in the right order, every KTRDR_ variable is one a service's
settings actually read (and the values validate), no secret is written into the file, and the
broker's delivery-ack timeout agrees with what the trainers are told."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.events.settings import DatabaseSettings
from services.api.settings import ApiSettings
from services.projector.settings import ProjectorSettings
from services.trainer.settings import TrainerSettings

REPO = Path(__file__).resolve().parents[3]
APP_SERVICES = {
    "migrate": DatabaseSettings,
    "api": ApiSettings,
    "projector": ProjectorSettings,
    "trainer-cpu": TrainerSettings,
}
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
SECRET_WORDS = re.compile(r"PASS|SECRET|TOKEN|API_KEY", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::?[?-][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def resolved(value: Any) -> str:
    """What compose would pass once the ${VARS} are set (dummy values here)."""
    return INTERPOLATION.sub(lambda m: f"dummy-{m['name'].lower()}", str(value))


def variables_read_by(settings: type) -> set[str]:
    return {f"KTRDR_{field.upper()}" for field in settings.model_fields}


def test_every_service_is_there(compose):
    assert set(compose["services"]) >= {"rabbitmq", "postgres", *APP_SERVICES}
    for name in APP_SERVICES:
        assert compose["services"][name]["image"] == "ktrdr-training:local"
        assert compose["services"][name]["build"] == "."


def test_the_schema_is_migrated_before_any_service_starts(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "projector", "trainer-cpu"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["rabbitmq"]["condition"] == "service_healthy"
    assert [services[n]["command"][0] for n in ("api", "projector", "trainer-cpu")] == [
        "api",
        "projector",
        "trainer",
    ]


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_app_settings_use_the_ktrdr_vocabulary_and_validate(compose, service, monkeypatch):
    environment = compose["services"][service]["environment"]
    settings_class = APP_SERVICES[service]
    ktrdr = {k for k in environment if k.startswith("KTRDR_")}
    unread = ktrdr - variables_read_by(settings_class)
    assert not unread, f"{service}: variables its settings do not read: {sorted(unread)}"
    # The rest are boto3's S3 credentials, for the services that use the artifact store.
    assert set(environment) - ktrdr <= S3_CREDENTIALS
    if set(environment) - ktrdr:
        assert "KTRDR_ARTIFACTS_URL" in environment
    for key in [k for k in os.environ if k.startswith("KTRDR_")]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, resolved(value))
    settings = settings_class()  # raises if a value does not validate
    if "KTRDR_DATABASE_URL" in variables_read_by(settings_class):
        assert settings.database_url == (
            "postgresql+asyncpg://ktrdr:dummy-postgres_password@postgres:5432/ktrdr"
        )
    if "KTRDR_BROKER_URL" in variables_read_by(settings_class):
        assert settings.broker_url == "amqp://ktrdr:dummy-rabbitmq_password@rabbitmq:5672/"


def test_no_secret_is_written_into_the_file(compose):
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            text = str(value)
            if SECRET_WORDS.search(key):
                assert INTERPOLATION.fullmatch(text), f"{name}.{key} must come from ${{...}}"
            for password in re.findall(r"://[^:/@]+:([^@]+)@", text):
                assert INTERPOLATION.fullmatch(password), f"{name}.{key} embeds a password"
    assert "${POSTGRES_PASSWORD:?" in (REPO / "docker-compose.yml").read_text()  # required


def test_broker_ack_timeout_covers_the_longest_training(compose):
    services = compose["services"]
    erl_args = services["rabbitmq"]["environment"]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    consumer_timeout_ms = int(re.search(r"-rabbit consumer_timeout (\d+)", erl_args).group(1))
    trainer = services["trainer-cpu"]["environment"]
    told_s = float(trainer["KTRDR_BROKER_CONSUMER_TIMEOUT_S"])
    assert consumer_timeout_ms > 30 * 60 * 1000, "raised above RabbitMQ's 30 min default"
    assert told_s * 1000 == consumer_timeout_ms
    assert float(trainer["KTRDR_LEASE_S"]) < told_s
    grace = float(trainer["KTRDR_SHUTDOWN_GRACE_S"])
    assert float(services["trainer-cpu"]["stop_grace_period"].rstrip("s")) > grace


def test_models_travel_through_the_s3_artifact_store_not_a_shared_folder(compose):
    services = compose["services"]
    api, trainer = services["api"], services["trainer-cpu"]
    for service in (api, trainer):
        assert service["environment"]["KTRDR_ARTIFACTS_URL"] == "s3://ktrdr-artifacts/"
        assert service["environment"]["KTRDR_ARTIFACTS_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert not service.get("volumes"), "no folder shared between trainers and the API"
        assert service["depends_on"]["minio-bucket"]["condition"] == (
            "service_completed_successfully"
        )
    assert "ktrdr-artifacts" in " ".join(services["minio-bucket"]["command"])
    assert "artifacts:/data" in services["minio"]["volumes"]
    assert (
        services["minio"]["environment"]["MINIO_ROOT_USER"]
        == (api["environment"]["AWS_ACCESS_KEY_ID"])
    )


def test_the_image_installs_cpu_torch_and_leaves_local_state_out():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "download.pytorch.org/whl/cpu" in dockerfile
    assert re.search(r"^ENTRYPOINT \[\"ktrdr\"\]", dockerfile, re.MULTILINE)
    assert re.search(r"^USER ", dockerfile, re.MULTILINE), "the services must not run as root"
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".venv", "models", "var", ".env", ".git"} <= ignored


def test_prometheus_scrapes_every_ktrdr_process_where_it_serves_metrics(
    compose: dict[str, Any],
) -> None:
    prometheus = compose["services"]["prometheus"]
    mounted = [v.split(":")[0] for v in prometheus["volumes"] if v.startswith("./")]
    config = yaml.safe_load((REPO / mounted[0]).read_text())
    targets: dict[str, int] = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.split(":")
                targets[host] = int(port)
        for dns in job.get("dns_sd_configs", []):
            for name in dns["names"]:
                targets[name] = int(dns["port"])
    env = {name: service.get("environment", {}) for name, service in compose["services"].items()}
    assert targets["api"] == int(env["api"]["KTRDR_PORT"])  # the API serves /metrics itself
    for name in ("projector", "trainer-cpu"):
        assert targets[name] == int(env[name]["KTRDR_METRICS_PORT"]), name
