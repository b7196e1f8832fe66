"""FastAPI dependencies: the app's parts, and who is calling.

Authentication is not part of this issue: every caller is the anonymous principal of tenant
"default". Routes depend on `current_principal` (and `require_role`) only, so bearer API keys
(DESIGN §8: hashed keys with a tenant and a role) slot in by replacing `current_principal`'s body
without touching a route.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from services.api.errors import Problem
from services.api.model_cache import ModelCache
from services.api.settings import ApiSettings

ROLES = ("reader", "trainer-user", "admin")
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: str  # reader | trainer-user | admin
    name: str | None = None  # who asked (recorded as requested_by)

    @property
    def sees_all_tenants(self) -> bool:
        return self.role == "admin"

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def owns(self, tenant: str) -> bool:
        return self.sees_all_tenants or tenant == self.tenant


@dataclass
class Components:
    """What the routes use; put on `app.state.components` by the lifespan."""

    settings: ApiSettings
    store: Any  # libs.events.store.EventStore
    notifier: Any  # libs.events.notify.Notifier (subscribe / wait_for_change)
    bus: Any | None = None  # libs.events.bus port; only readiness looks at it
    engine: Any | None = None  # AsyncEngine; readiness pings it
    relay: Any | None = None
    # Set once the bus is connected (standalone: connected in the background, with retries).
    bus_ready: asyncio.Event = field(default_factory=asyncio.Event)
    model_cache: ModelCache = field(default_factory=ModelCache)


def components(request: Request) -> Components:
    found = getattr(request.app.state, "components", None)
    if found is None:  # only before startup or after shutdown
        raise Problem(503, "the service is starting or stopping", kind="unavailable")
    return found


def settings(parts: Annotated[Components, Depends(components)]) -> ApiSettings:
    return parts.settings


def store(parts: Annotated[Components, Depends(components)]) -> Any:
    return parts.store


async def current_principal(
    requested_by: Annotated[str | None, Header(alias="X-Requested-By", max_length=200)] = None,
) -> Principal:
    return Principal(tenant=DEFAULT_TENANT, role="trainer-user", name=requested_by)


def require_role(role: str):
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(role):
            raise Problem(
                403, f"this needs the {role!r} role; you have {principal.role!r}", kind="forbidden"
            )
        return principal

    return check


PartsDep = Annotated[Components, Depends(components)]
StoreDep = Annotated[Any, Depends(store)]
SettingsDep = Annotated[ApiSettings, Depends(settings)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
SubmitterDep = Annotated[Principal, Depends(require_role("trainer-user"))]
