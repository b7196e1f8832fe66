"""A saved model as one artifact: its folder packed into a tar under a versioned key, published
to the artifact store every process reaches, and unpacked (verified) where it is served.

Keys: `models/{tenant}/{strategy}/{timeframe}/v{N}.tar`. Versions are allocated in the store
itself: `create_file` succeeds for exactly one writer per key, so two trainers on two machines
finishing models of one strategy at once get v{N} and v{N+1}, never one version twice. The
tar is deterministic (sorted members, zero times and owners), so one folder always packs to the
same bytes and the same sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from libs.artifacts import ArtifactExists, ArtifactInfo, ArtifactStore, CorruptArtifact
from libs.pipeline.storage.layout import validate_name
from libs.pipeline.storage.save import MODEL_FILES

MODELS_PREFIX = "models"
_VERSION_FILE = re.compile(r"^v(?P<n>\d+)\.tar$")
_MAX_ATTEMPTS = 1000


@dataclass(frozen=True)
class PublishedModel:
    version: int
    artifact: ArtifactInfo


def model_prefix(tenant: str, strategy: str, timeframe: str) -> str:
    validate_name("tenant", tenant)
    validate_name("strategy", strategy)
    validate_name("timeframe", timeframe)
    return f"{MODELS_PREFIX}/{tenant}/{strategy}/{timeframe}/"


def model_key(tenant: str, strategy: str, timeframe: str, version: int) -> str:
    return f"{model_prefix(tenant, strategy, timeframe)}v{version}.tar"


def pack_model(folder: Path, out: Path) -> None:
    """The model files of `folder` as a deterministic tar at `out`."""
    missing = [n for n in ("model.pt", "metadata.json") if not (Path(folder) / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not a saved model folder (no {', '.join(missing)})")
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in MODEL_FILES:
            path = Path(folder) / name
            if not path.is_file():
                continue
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode = 0o644
            with open(path, "rb") as f:
                tar.addfile(info, f)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def published_versions(
    store: ArtifactStore, tenant: str, strategy: str, timeframe: str
) -> list[int]:
    prefix = model_prefix(tenant, strategy, timeframe)
    found = (_VERSION_FILE.match(info.key[len(prefix) :]) for info in store.list(prefix))
    return sorted(int(m["n"]) for m in found if m is not None)


def publish_model(
    store: ArtifactStore, folder: Path, *, tenant: str, strategy: str, timeframe: str
) -> PublishedModel:
    """Pack `folder`, store it under the next free version, and check that the store holds
    exactly the bytes packed (size and sha256) before returning."""
    fd, name = tempfile.mkstemp(prefix=".publish-", suffix=".tar", dir=Path(folder).parent)
    os.close(fd)
    packed = Path(name)
    try:
        pack_model(folder, packed)
        sha256, size = _sha256(packed), packed.stat().st_size
        version = max(published_versions(store, tenant, strategy, timeframe), default=0) + 1
        for _ in range(_MAX_ATTEMPTS):
            try:
                info = store.create_file(model_key(tenant, strategy, timeframe, version), packed)
                break
            except ArtifactExists:
                version += 1
        else:
            raise RuntimeError(f"could not allocate a version for {strategy}/{timeframe}")
    finally:
        packed.unlink(missing_ok=True)
    if info.sha256 != sha256 or info.size != size:
        raise CorruptArtifact(f"{info.key}: the store holds other bytes than were published")
    return PublishedModel(version, info)


def unpack_model(store: ArtifactStore, key: str, sha256: str, cache_dir: Path) -> Path:
    """The model folder of artifact `key` under `cache_dir/{sha256}`, fetched and verified on
    first use (a folder there is complete: it is renamed into place whole)."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise CorruptArtifact(f"{key}: {sha256!r} is not a sha256")
    target = Path(cache_dir) / sha256
    if (target / "metadata.json").is_file():
        return target
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    work = Path(cache_dir) / f".tmp-{uuid.uuid4().hex}"
    work.mkdir()
    try:
        tar_path = work / "model.tar"
        info = store.get_file(key, tar_path)
        if info.sha256 != sha256:
            raise CorruptArtifact(f"{key}: stored sha256 {info.sha256}, announced {sha256}")
        folder = work / "model"
        folder.mkdir()
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                if member.name not in MODEL_FILES or not member.isfile():
                    raise CorruptArtifact(f"{key}: unexpected member {member.name!r}")
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - isfile() members always have data
                    raise CorruptArtifact(f"{key}: unreadable member {member.name!r}")
                with source, open(folder / member.name, "wb") as out:
                    shutil.copyfileobj(source, out)
        with contextlib.suppress(OSError):  # another reader unpacked it first: keep theirs
            os.rename(folder, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not (target / "metadata.json").is_file():
        raise CorruptArtifact(f"{key}: no metadata.json in the artifact")
    return target


def clean_crashed_saves(
    store: ArtifactStore, models_dir: Path, older_than_s: float = 3600.0
) -> int:
    """Remove what crashed saves and uploads left behind, once older than `older_than_s`: the
    store's partial writes, and temp folders / packed tars under `models_dir`."""
    import time

    removed = store.clean_partial(older_than_s)
    root = Path(models_dir)
    if not root.is_dir():
        return removed
    cutoff = time.time() - older_than_s
    for path in root.rglob(".*"):
        if not (path.name.startswith((".tmp-", ".publish-"))) or path.is_symlink():
            continue
        try:
            if path.lstat().st_mtime > cutoff:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:  # another cleaner got there first
            continue
        removed += 1
    return removed
