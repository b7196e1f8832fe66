"""/api/v1/keys: API keys, for admins only (`ktrdr keys create|list|revoke`).

A key is shown once, in the answer to its creation; the store keeps its hash
(services/api/apikeys.py). Revoking is final and takes effect on the next request to any API
process. Admins manage the keys of every tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from libs.events.store.apikeys import ApiKeyRecord
from services.api.apikeys import NAME_PATTERN, TENANT_PATTERN, generate_key, new_record
from services.api.deps import AdminDep, StoreDep
from services.api.errors import not_found

router = APIRouter(prefix="/keys", tags=["keys"])  # paths.KEYS

Role = Literal["reader", "trainer-user", "admin"]
KEY_ID_PATTERN = r"^[0-9a-f]{16}$"


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=200, description="what the key is for")
    role: Role = "trainer-user"
    tenant: str | None = Field(
        default=None, pattern=TENANT_PATTERN, description="default: the caller's tenant"
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class KeyView(BaseModel):
    key_id: str
    name: str
    tenant: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    active: bool

    @classmethod
    def of(cls, record: ApiKeyRecord) -> KeyView:
        return cls(
            key_id=record.key_id,
            name=record.name,
            tenant=record.tenant,
            role=record.role,
            created_at=record.created_at,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
            last_used_at=record.last_used_at,
            active=record.usable_at(datetime.now(UTC)),
        )


class CreatedKey(KeyView):
    key: str = Field(description="the key itself: shown this once, never stored")


class KeyList(BaseModel):
    items: list[KeyView]


@router.post("", status_code=201, response_model=CreatedKey)
async def create_key(body: CreateKey, store: StoreDep, admin: AdminDep) -> CreatedKey:
    """Make a key; the answer holds the key itself, which is never shown again."""
    key = generate_key()
    now = datetime.now(UTC)
    expires = None if body.expires_in_days is None else now + timedelta(days=body.expires_in_days)
    record = new_record(
        key,
        tenant=body.tenant or admin.tenant,
        role=body.role,
        name=body.name,
        expires_at=expires,
        now=now,
    )
    await store.add_api_key(record)
    return CreatedKey(**KeyView.of(record).model_dump(), key=key)


@router.get("", response_model=KeyList)
async def list_keys(
    store: StoreDep,
    _: AdminDep,
    tenant: Annotated[str | None, Query(pattern=TENANT_PATTERN)] = None,
) -> KeyList:
    """Every key (of one tenant), oldest first; secrets are never shown."""
    return KeyList(items=[KeyView.of(r) for r in await store.api_keys(tenant=tenant)])


@router.post("/{key_id}/revoke", response_model=KeyView, responses={404: {}})
async def revoke_key(
    key_id: Annotated[str, Path(pattern=KEY_ID_PATTERN)], store: StoreDep, _: AdminDep
) -> KeyView:
    """Revoke a key: the next request with it fails, on every API process."""
    record = await store.revoke_api_key(key_id, datetime.now(UTC))
    if record is None:
        raise not_found("API key", key_id)
    return KeyView.of(record)
