"""API keys as the store keeps them: who a key belongs to (tenant), what it may do (role), and the
hash of its secret — never the secret itself.

Keys live in their own table (`api_keys`, libs/events/tables.py), not in the event log: they are
credentials, not training history. The log is published to the bus and replayed by anyone who
can read it; a key's lifecycle (created, revoked, expired, last used) is kept as timestamps on
its row instead, which is never deleted, so the table itself is the audit of every key.
Hashing and checking secrets is the API's business (services/api/apikeys.py); the store only
stores and finds rows, which both adapters do alike (tests/contract/test_store_contract.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

ROLES = ("reader", "trainer-user", "admin")  # each role can do what the ones before it can


class DuplicateApiKey(Exception):
    """A key with this id is already stored."""


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    tenant: str
    role: str
    name: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        """Neither revoked nor expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def to_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}
