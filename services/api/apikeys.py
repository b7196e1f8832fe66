"""API keys: their format, how their secrets are hashed and checked, and how one is made.

A key reads `ktrdr_<key id>_<secret>`: the key id (16 hex digits) finds the row, the secret (a
`secrets.token_urlsafe(32)`) proves the caller holds the key. The store keeps only the secret's
scrypt hash (salted, memory-hard: a stolen table does not give keys back), and a presented
secret is compared with `hmac.compare_digest`. The key is shown once, when it is made.

Scrypt is slow on purpose, so `Verifier` remembers which presented keys matched which stored
hash (by the SHA-256 of the key, never the key): the row itself is read on every request, so a
revoked or expired key fails at once on every process; only the hashing is skipped.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

from libs.events.store.apikeys import ROLES, ApiKeyRecord, DuplicateApiKey
from libs.events.store.port import EventStore
from libs.pipeline import names

PREFIX = "ktrdr"
KEY_PATTERN = re.compile(r"^ktrdr_(?P<key_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{32,128})$")
TENANT_PATTERN = names.TENANT.pattern
NAME_PATTERN = r"^[\x21-\x7e][\x20-\x7e]{0,199}$"  # printable ASCII

# scrypt at the cost OWASP recommends for interactive logins (16 MiB, ~50 ms).
_N, _R, _P, _LEN = 2**14, 8, 1, 32
_MAXMEM = 64 * 1024 * 1024


class InvalidKeyFormat(ValueError):
    """Not a `ktrdr_<key id>_<secret>` key."""


@dataclass(frozen=True)
class ParsedKey:
    key_id: str
    secret: str


def parse_key(key: str) -> ParsedKey:
    match = KEY_PATTERN.fullmatch(key.strip())
    if match is None:
        raise InvalidKeyFormat(
            "an API key reads ktrdr_<16 hex digits>_<secret of 32+ URL-safe characters>"
        )
    return ParsedKey(match["key_id"], match["secret"])


def generate_key() -> str:
    """A fresh random key (a new key id and secret)."""
    return f"{PREFIX}_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN, maxmem=_MAXMEM
    )
    return "$".join(
        ["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)],
    )


def secret_matches(secret: str, stored: str) -> bool:
    """Does `secret` hash to `stored` (constant-time comparison)?"""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        computed = hashlib.scrypt(
            secret.encode(),
            salt=base64.urlsafe_b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=_MAXMEM,
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed, expected)


def new_record(
    key: str,
    *,
    tenant: str,
    role: str,
    name: str,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> ApiKeyRecord:
    """The row to store for `key` (made by `generate_key()` or given by the operator)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not names.TENANT.matches(tenant):
        raise ValueError(f"tenant: {names.TENANT.rule()}")
    parsed = parse_key(key)
    return ApiKeyRecord(
        key_id=parsed.key_id,
        tenant=tenant,
        role=role,
        name=name,
        secret_hash=hash_secret(parsed.secret),
        created_at=now or datetime.now(UTC),
        expires_at=expires_at,
    )


BOOTSTRAP_NAME = "bootstrap"
BOOTSTRAP_TENANT = "default"


async def ensure_bootstrap_key(store: EventStore, key: str | None, *, generate: bool) -> str | None:
    """Make sure an admin can get in: store `key` (KTRDR_BOOTSTRAP_API_KEY) as an admin key of
    tenant "default" if it is not stored yet; with no `key`, and `generate`, make a new admin
    key when the store holds no key at all. Returns a key made here (to show once), else None."""
    if key is not None:
        record = new_record(key, tenant=BOOTSTRAP_TENANT, role="admin", name=BOOTSTRAP_NAME)
        if await store.api_key(record.key_id) is None:
            with contextlib.suppress(DuplicateApiKey):  # another process stored it first
                await store.add_api_key(record)
        return None
    if not generate or await store.api_keys():
        return None
    made = generate_key()
    await store.add_api_key(
        new_record(made, tenant=BOOTSTRAP_TENANT, role="admin", name=BOOTSTRAP_NAME)
    )
    return made


class Verifier:
    """Checks secrets against stored hashes. scrypt is slow on purpose (~50 ms), so it runs in a
    worker thread, a few at a time, never on the event loop; a key that matched a hash before is
    remembered (by its SHA-256) and re-checked without scrypt. An unknown key id is hashed
    against a dummy, so the answer takes as long whether the id exists or not."""

    def __init__(self, max_entries: int = 4096, concurrent: int = 2) -> None:
        self._matched: dict[bytes, str] = {}  # sha256(presented key) -> the hash it matched
        self._max = max_entries
        self._slots = anyio.Semaphore(concurrent)
        self._dummy = hash_secret(secrets.token_urlsafe(32))

    def remembered(self, key: str, stored: str) -> bool:
        """True if `key` matched `stored` before (no scrypt)."""
        known = self._matched.get(_fingerprint(key))
        return known is not None and hmac.compare_digest(known, stored)

    async def matches(self, key: str, secret: str, stored: str | None) -> bool:
        if stored is not None and self.remembered(key, stored):
            return True
        async with self._slots:
            ok = await anyio.to_thread.run_sync(secret_matches, secret, stored or self._dummy)
        if not ok or stored is None:
            return False
        if len(self._matched) >= self._max:
            self._matched.clear()
        self._matched[_fingerprint(key)] = stored
        return True


def _fingerprint(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()
