"""The API's URL layout, shared by the app (its routers are mounted here) and the CLI client."""

from __future__ import annotations

API_PREFIX = "/api/v1"
TRAININGS = f"{API_PREFIX}/trainings"


def training_path(training_id: str) -> str:
    return f"{TRAININGS}/{training_id}"


MODELS = f"{API_PREFIX}/models"


def model_path(strategy: str, version: str) -> str:
    return f"{MODELS}/{strategy}/{version}"


def alias_path(strategy: str, alias: str) -> str:
    return f"{MODELS}/{strategy}/aliases/{alias}"


KEYS = f"{API_PREFIX}/keys"
