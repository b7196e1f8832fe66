"""A small synchronous client for the REST API, with problem+json turned into readable errors.

Base URL and key come from --api-url / --api-key, else KTRDR_API_URL / KTRDR_API_KEY, else the
user's config file (services/cli/client/config.py), else http://127.0.0.1:8000 and no key; the
key is sent as a bearer token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from libs.settings import KtrdrSettings
from services.api.paths import TRAININGS, training_path

DEFAULT_API_URL = "http://127.0.0.1:8000"


class ClientSettings(KtrdrSettings):
    """KTRDR_API_URL and KTRDR_API_KEY: which API the CLI talks to, and as whom."""

    api_url: str | None = None
    api_key: str | None = None


@dataclass
class ApiError(Exception):
    """The API answered with an error (a problem document) or could not be reached."""

    status: int | None  # None: not reached at all
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [self.detail]
        lines += [
            f"  {e.get('field', '?')}: {e.get('reason', '')}"
            for e in self.errors
            if f"{e.get('field')}: {e.get('reason')}" != self.detail
        ]
        return "\n".join(lines)


class ApiClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    @classmethod
    def from_options(cls, api_url: str | None, api_key: str | None) -> ApiClient:
        from services.cli.client.config import ConfigError, read_config

        settings = ClientSettings()
        try:
            saved = read_config()
        except ConfigError as error:
            raise ApiError(None, str(error)) from None
        url = api_url or settings.api_url or saved.get("api_url") or DEFAULT_API_URL
        return cls(url, api_key or settings.api_key or saved.get("api_key"))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- resources ---------------------------------------------------------------------------
    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.request("POST", TRAININGS, json=body, headers=headers)

    def training(self, training_id: str) -> dict[str, Any]:
        return self.request("GET", training_path(training_id))

    def trainings(self, **params: Any) -> dict[str, Any]:
        params = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", TRAININGS, params=params)

    def cancel(self, training_id: str, reason: str | None = None) -> dict[str, Any]:
        body = {"reason": reason} if reason else None
        return self.request("POST", f"{training_path(training_id)}/cancel", json=body)

    def events_url(self, training_id: str) -> str:
        return f"{training_path(training_id)}/events"

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """`path` is the API path, prefix included (services/api/paths.py)."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(self.base_url, exc) from None
        body: dict[str, Any] = checked(response)
        return body


def checked(response: httpx.Response) -> Any:
    if response.status_code < 400:
        return response.json()
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = str(body.get("detail") or f"HTTP {response.status_code} {response.reason_phrase}")
    listed = body.get("errors")
    errors = listed if isinstance(listed, list) else []
    raise ApiError(response.status_code, detail, errors)


def unreachable(base_url: str, exc: Exception) -> ApiError:
    return ApiError(
        None,
        f"cannot reach the API at {base_url} ({type(exc).__name__}: {exc}); "
        "is `ktrdr up` or `ktrdr api` running? (--api-url / KTRDR_API_URL)",
    )
