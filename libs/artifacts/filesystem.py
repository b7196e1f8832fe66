"""The filesystem ArtifactStore: the embedded default, and shared volumes.

A write goes to `{root}/.partial/` first, is flushed and fsynced, then renamed over its key
(rename is atomic within one filesystem), so readers never see a partial file. Crashed writes
leave only `.partial/` files, which `clean_partial` removes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from libs.artifacts.port import (
    ArtifactExists,
    ArtifactInfo,
    ArtifactNotFound,
    CorruptArtifact,
    check_key,
)

PARTIAL_DIR = ".partial"
_CHUNK = 1 << 20

Chunks = Callable[[], Iterator[bytes]]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"FilesystemArtifactStore({self.root})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _info(self, key: str, path: Path) -> ArtifactInfo:
        return ArtifactInfo(key, path.as_uri(), path.stat().st_size, sha256_of(path))

    def _commit(self, key: str, write: Chunks, *, if_absent: bool = False) -> ArtifactInfo:
        target = self._path(key)
        partial = self.root / PARTIAL_DIR
        partial.mkdir(parents=True, exist_ok=True)
        tmp = partial / f"{uuid.uuid4().hex}.tmp"
        digest = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as f:
                for chunk in write():
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            if if_absent:  # link(2) refuses an existing name: exactly one writer wins
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    raise ArtifactExists(key) from None
                tmp.unlink()
            else:
                os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return ArtifactInfo(key, target.as_uri(), size, digest.hexdigest())

    def put_file(self, key: str, path: Path) -> ArtifactInfo:
        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as f:
                yield from iter(lambda: f.read(_CHUNK), b"")

        return self._commit(key, chunks)

    def create_file(self, key: str, path: Path) -> ArtifactInfo:
        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as f:
                yield from iter(lambda: f.read(_CHUNK), b"")

        return self._commit(key, chunks, if_absent=True)

    def put_bytes(self, key: str, data: bytes) -> ArtifactInfo:
        return self._commit(key, lambda: iter((data,)))

    def stat(self, key: str) -> ArtifactInfo | None:
        path = self._path(key)
        return self._info(key, path) if path.is_file() else None

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ArtifactNotFound(key) from None

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    def get_file(self, key: str, path: Path) -> ArtifactInfo:
        source = self._path(key)
        if not source.is_file():
            raise ArtifactNotFound(key)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        expected = sha256_of(source)
        try:
            shutil.copyfile(source, tmp)
            if sha256_of(tmp) != expected:
                raise CorruptArtifact(f"{key}: the copy does not match the stored sha256")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ArtifactInfo(key, source.as_uri(), path.stat().st_size, expected)

    def iter_chunks(self, key: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        with self.open(key) as f:
            yield from iter(lambda: f.read(chunk_size), b"")

    def list(self, prefix: str = "") -> list[ArtifactInfo]:
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.rglob("*"):
            rel = path.relative_to(self.root).as_posix()
            if rel.startswith(PARTIAL_DIR) or not path.is_file() or not rel.startswith(prefix):
                continue
            found.append(self._info(rel, path))
        return sorted(found, key=lambda info: info.key)

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def clean_partial(self, older_than_s: float = 3600.0) -> int:
        partial = self.root / PARTIAL_DIR
        if not partial.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for path in partial.iterdir():
            if path.stat().st_mtime <= cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
