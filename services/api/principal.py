"""Who is calling: the tenant and role of the API key a request authenticated with."""

from __future__ import annotations

from dataclasses import dataclass

from libs.events.store.apikeys import ROLES


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: str  # reader | trainer-user | admin
    name: str | None = None  # the key's name (recorded as requested_by)
    key_id: str | None = None

    @property
    def sees_all_tenants(self) -> bool:
        return self.role == "admin"

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def owns(self, tenant: str) -> bool:
        return self.sees_all_tenants or tenant == self.tenant
