"""Authentication: every request but the probes (and the docs, by a setting) needs an API key.

`RequireApiKey` is an ASGI middleware around the whole app, so auth is by default and by path:
a route added to any router is closed unless its path is in `open_paths()`; nothing a handler
declares (or forgets) opens it, and no body or query is even parsed for a caller without a key.
It answers `401` with `WWW-Authenticate: Bearer` for a missing, malformed, unknown, wrong,
revoked or expired key, and puts the caller's `Principal` in the request's state, where
`deps.current_principal` (a dependency of every router, for the OpenAPI document and as a
second lock) reads it.

Each request reads the key's row from the store (no per-process cache of keys: a revoke is seen
by every API process on its next request); `apikeys.Verifier` only spares the scrypt work.
Failed attempts are logged with the client address and the key id if any (never the secret),
and wrong keys are rate-limited per client address by a token bucket (`429` + `Retry-After`;
IPv6 counted per /64). A request without any key costs no bucket token: it guesses nothing. A
key this process has seen match is never throttled, so other callers' failures behind the same
address (NAT, a proxy) cannot lock it out. The client address is the socket's peer: forwarded
headers count only from the proxies `KTRDR_FORWARDED_ALLOW_IPS` names (off by default).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.types import ASGIApp, Receive, Scope, Send

from libs.events.store.port import EventStore
from services.api.apikeys import InvalidKeyFormat, Verifier, parse_key
from services.api.errors import Problem, problem_response, unavailable
from services.api.paths import API_PREFIX
from services.api.principal import Principal
from services.api.settings import ApiSettings

log = logging.getLogger("ktrdr.api.auth")

HEALTH_PATHS = ("/healthz", "/readyz")
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
# The dashboard's page and assets (services/api/dashboard) hold no data: the page asks for a key.
DASHBOARD_PATHS = ("/", "/ui")
OPEN_PREFIXES = ("/ui/",)
METRICS_PATH = "/metrics"  # Prometheus scrapes it (routers/metrics.py)
DOCS_ASSETS_PREFIX = "/docs/assets"  # services/api/docs.py serves Swagger UI's and ReDoc's files
# Writing last_used_at on every request would turn reads into writes; once a minute is enough.
TOUCH_EVERY = timedelta(seconds=60)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ktrdr"'}


def is_open(path: str, open_: frozenset[str]) -> bool:
    """Does `path` answer without a key: one of `open_` (see `open_paths`) or a dashboard
    asset under OPEN_PREFIXES."""
    return path in open_ or path.startswith(OPEN_PREFIXES)


def open_paths(settings: ApiSettings) -> frozenset[str]:
    paths = {*HEALTH_PATHS, *(API_PREFIX + p for p in HEALTH_PATHS), *DASHBOARD_PATHS}
    if settings.public_docs:
        paths.update(DOCS_PATHS)
    if settings.public_metrics:
        paths.add(METRICS_PATH)
    return frozenset(paths)


class FailureLimiter:
    """A token bucket per client address (IPv6: per /64, what one host usually holds), spent by
    failed authentications. The table keeps the `max_addresses` most recently failing ones."""

    def __init__(
        self,
        burst: int,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.burst, self.rate = burst, per_minute / 60.0
        self.clock = clock
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # -> (tokens, at)

    @property
    def tracked(self) -> int:
        """How many addresses (or /64s) the table holds."""
        return len(self._buckets)

    def _tokens(self, source: str) -> float:
        tokens, at = self._buckets.get(source, (float(self.burst), self.clock()))
        return min(float(self.burst), tokens + (self.clock() - at) * self.rate)

    def retry_after(self, address: str) -> int | None:
        """Seconds until the address may try again; None if it may now."""
        tokens = self._tokens(source_of(address))
        if tokens >= 1.0:
            return None
        return max(1, math.ceil((1.0 - tokens) / self.rate)) if self.rate > 0 else 3600

    def spend(self, address: str) -> None:
        source = source_of(address)
        self._buckets[source] = (self._tokens(source) - 1.0, self.clock())
        self._buckets.move_to_end(source)
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)


def source_of(address: str) -> str:
    """The unit a bucket counts: the address itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass
class Authenticator:
    limiter: FailureLimiter
    verifier: Verifier

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Authenticator:
        limiter = FailureLimiter(settings.auth_failure_burst, settings.auth_failures_per_minute)
        return cls(limiter, Verifier())

    async def principal(
        self, store: EventStore, authorization: str | None, address: str
    ) -> Principal:
        """The caller, or a 401/429 problem. A key this process has seen match keeps working
        from an address that is throttled (other people's failures must not lock a valid key
        out); everything else from such an address gets 429 before any hashing."""
        if not authorization:
            log.info("authentication failed from %s: no API key", address)
            raise unauthorized("this needs an API key: send `Authorization: Bearer <key>`")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        key_id = "-"
        try:
            if scheme.lower() != "bearer":
                raise InvalidKeyFormat("not a bearer token")
            parsed = parse_key(key)
            key_id = parsed.key_id
            record = await store.api_key(parsed.key_id)
            known = record is not None and self.verifier.remembered(key, record.secret_hash)
            if not known:
                self._refuse_if_throttled(address)
            stored = record.secret_hash if record is not None else None
            now = datetime.now(UTC)
            if record is None or not await self.verifier.matches(key, parsed.secret, stored):
                reason = "unknown or wrong key"
            elif not record.usable_at(now):
                reason = "revoked key" if record.revoked_at else "expired key"
            else:
                if record.last_used_at is None or now - record.last_used_at >= TOUCH_EVERY:
                    await store.touch_api_key(record.key_id, now)
                return Principal(
                    tenant=record.tenant, role=record.role, name=record.name, key_id=record.key_id
                )
        except InvalidKeyFormat:
            self._refuse_if_throttled(address)
            reason = "malformed key"
        self.limiter.spend(address)
        log.warning("authentication failed from %s: %s (key id %s)", address, reason, key_id)
        raise unauthorized("the API key is not valid (unknown, wrong, revoked or expired)")

    def _refuse_if_throttled(self, address: str) -> None:
        wait = self.limiter.retry_after(address)
        if wait is not None:
            log.warning("authentication refused from %s: too many failed attempts", address)
            raise Problem(
                429,
                f"too many failed authentications from this address; retry in {wait} s",
                kind="too-many-failures",
                headers={"Retry-After": str(wait)},
            )


async def key_usable(store: EventStore, key_id: str) -> bool:
    """Is the key still there, not revoked, not expired (for work that outlives a request)?"""
    record = await store.api_key(key_id)
    return record is not None and record.usable_at(datetime.now(UTC))


def unauthorized(detail: str) -> Problem:
    return Problem(401, detail, kind="unauthorized", headers=CHALLENGE)


class RequireApiKey:
    """The ASGI middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, settings: ApiSettings) -> None:
        self.app = app
        self.open = open_paths(settings)
        # The docs pages' own scripts and styles (services/api/docs.py) open with the pages.
        self.open_prefix = DOCS_ASSETS_PREFIX + "/" if settings.public_docs else None
        self.auth = Authenticator.from_settings(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or is_open(path, self.open)
            or (self.open_prefix is not None and path.startswith(self.open_prefix))
        ):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._authenticate(scope)
        except Problem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Principal:
        parts = getattr(scope["app"].state, "components", None)
        if parts is None:
            raise unavailable("service (starting or stopping)")
        authorization = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        client = scope.get("client")
        address = client[0] if client else "unknown"
        try:
            return await self.auth.principal(parts.store, authorization, address)
        except Problem:
            raise
        except Exception as error:  # the database did not answer: not the caller's fault
            log.warning("cannot check an API key: %s: %s", type(error).__name__, error)
            raise unavailable("database (cannot check the API key)") from None
