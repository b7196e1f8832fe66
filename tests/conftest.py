"""Shared test plumbing.

Integration and e2e tests talk to the real Postgres (127.0.0.1:5432, trust auth) and RabbitMQ
(127.0.0.1:5672, guest/guest). When one is unreachable they skip on a laptop, but FAIL under
CI=true: a CI run that silently skipped the real-service tests would prove nothing.
"""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_HOST = os.environ.get("KTRDR_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("KTRDR_TEST_PG_PORT", "5432"))
RABBIT_HOST = os.environ.get("KTRDR_TEST_AMQP_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("KTRDR_TEST_AMQP_PORT", "5672"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message} (CI=true: real-service tests must run, not skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_available() -> None:
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)


@pytest.fixture(scope="session")
def rabbitmq_available() -> None:
    require_service("RabbitMQ", RABBIT_HOST, RABBIT_PORT)
