"""The ArtifactStore port: immutable blobs under slash-separated keys.

Every write is all-or-nothing: a reader sees a key's complete bytes or no key at all, so a
model or checkpoint is never half-written from anyone's point of view. The store is
synchronous on purpose: its main callers are the training thread (checkpoints, the saved
model) and CLI commands; async callers run it in a thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

# Keys are relative, slash-separated, made of safe segments: no `..`, no leading slash, no
# empty segment, so no backend can be led outside its root or bucket prefix.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,127}$")
MAX_KEY_LENGTH = 1024


class InvalidArtifactKey(ValueError):
    """A key that is not a relative path of safe segments."""


class ArtifactNotFound(KeyError):
    """No artifact under that key."""


class ArtifactExists(FileExistsError):
    """`create_file` found the key taken: another writer got there first."""


class CorruptArtifact(OSError):
    """The bytes stored or read back do not match their sha256."""


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidArtifactKey(f"artifact key must be 1..{MAX_KEY_LENGTH} characters")
    for segment in key.split("/"):
        if not _SEGMENT.match(segment) or segment in (".", ".."):
            raise InvalidArtifactKey(
                f"artifact key {key!r}: each '/'-separated part must start with a letter or "
                "digit and hold only letters, digits and . _ = + -"
            )
    return key


@dataclass(frozen=True)
class ArtifactInfo:
    key: str
    uri: str  # where it lives, e.g. file:///srv/artifacts/... or s3://bucket/prefix/...
    size: int  # bytes
    sha256: str  # hex digest of the bytes


@runtime_checkable
class ArtifactStore(Protocol):
    """Blobs under keys. Writes are atomic and verified (the returned sha256 is of the bytes
    actually stored); `put_*` on an existing key replaces it atomically."""

    def put_file(self, key: str, path: Path) -> ArtifactInfo: ...

    def put_bytes(self, key: str, data: bytes) -> ArtifactInfo: ...

    def create_file(self, key: str, path: Path) -> ArtifactInfo:
        """Like `put_file`, but only when the key is free: raises ArtifactExists when it is
        taken, atomically, so of two writers racing for one key exactly one wins (model
        versions are allocated this way)."""
        ...

    def stat(self, key: str) -> ArtifactInfo | None:
        """The artifact's info, or None when absent."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the bytes; raises ArtifactNotFound."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_file(self, key: str, path: Path) -> ArtifactInfo:
        """Copy the bytes to `path` (written atomically), verified against the stored sha256."""
        ...

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...

    def list(self, prefix: str = "") -> list[ArtifactInfo]:
        """Every artifact whose key starts with `prefix`, sorted by key."""
        ...

    def delete(self, key: str) -> bool:
        """Remove one artifact; False when it was absent."""
        ...

    def clean_partial(self, older_than_s: float = 3600.0) -> int:
        """Remove leftovers of writes that crashed more than `older_than_s` ago (younger ones
        may still be in progress); returns how many were removed."""
        ...
