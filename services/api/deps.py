"""FastAPI dependencies: the app's parts, and who is calling.

The caller was authenticated by `services/api/auth.RequireApiKey` (the middleware every request
but the probes passes) from its bearer API key; `current_principal` hands that `Principal` to
the routes. It is also a dependency of every router (app.py), which documents the bearer scheme
in the OpenAPI document and refuses a request that somehow reached a route unauthenticated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from libs.artifacts import ArtifactStore
from libs.events.bus.port import EventBus
from libs.events.migrate import SchemaStatus
from libs.events.notify.port import Notifier
from libs.events.store.port import EventStore
from services.api.errors import Problem
from services.api.model_cache import ModelCache
from services.api.principal import Principal
from services.api.settings import ApiSettings
from services.bootstrap import Stack, open_artifacts

__all__ = ["Principal", "current_principal", "require_role"]

# Documents `Authorization: Bearer <key>` in the OpenAPI document; the middleware checks it.
_bearer = HTTPBearer(auto_error=False, description="an API key: `ktrdr keys create`")


@dataclass
class Components:
    """What the routes and the probes use, taken from the composition root's stack; put on
    `app.state.components` by the lifespan."""

    settings: ApiSettings
    store: EventStore
    notifier: Notifier
    # Readiness only: a SELECT 1 (returns what answered), and the schema against the code's
    # migrations (None for the in-memory store). Both raise if the database does not answer.
    ping_database: Callable[[], Awaitable[str]]
    schema_status: Callable[[], Awaitable[SchemaStatus | None]]
    artifacts: ArtifactStore  # where trained models are (KTRDR_ARTIFACTS_URL)
    bus: EventBus | None = None  # readiness, and the ops routes (queues, dead letters)
    # Set once the bus is connected (standalone: connected in the background, with retries).
    bus_ready: asyncio.Event = field(default_factory=asyncio.Event)
    model_cache: ModelCache = field(default_factory=ModelCache)
    # Set when the server starts shutting down: open SSE streams end (services/api/server.py).
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def from_stack(cls, settings: ApiSettings, stack: Stack) -> Components:
        return cls(
            settings=settings,
            artifacts=open_artifacts(settings),
            store=stack.store,
            notifier=stack.notifier,
            ping_database=stack.ping_database,
            schema_status=stack.schema_status,
            bus=stack.bus if stack.has_bus else None,
            bus_ready=stack.bus_ready,
        )


def components(request: Request) -> Components:
    found: Components | None = getattr(request.app.state, "components", None)
    if found is None:  # only before startup or after shutdown
        raise Problem(503, "the service is starting or stopping", kind="unavailable")
    return found


def settings(parts: Annotated[Components, Depends(components)]) -> ApiSettings:
    return parts.settings


def store(parts: Annotated[Components, Depends(components)]) -> EventStore:
    return parts.store


async def current_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Principal:
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    if principal is None:
        from services.api.auth import unauthorized

        raise unauthorized("this needs an API key: send `Authorization: Bearer <key>`")
    return principal


def require_role(role: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(role):
            raise Problem(
                403, f"this needs the {role!r} role; you have {principal.role!r}", kind="forbidden"
            )
        return principal

    return check


PartsDep = Annotated[Components, Depends(components)]
StoreDep = Annotated[EventStore, Depends(store)]
SettingsDep = Annotated[ApiSettings, Depends(settings)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
SubmitterDep = Annotated[Principal, Depends(require_role("trainer-user"))]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]
