"""A model as one artifact (libs/pipeline/storage/bundle.py): deterministic packing, versions
allocated in the store, verified unpacking, and the cleanup of crashed saves."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from libs.artifacts import CorruptArtifact
from libs.artifacts.filesystem import PARTIAL_DIR, FilesystemArtifactStore
from libs.pipeline.storage.bundle import (
    clean_crashed_saves,
    model_key,
    pack_model,
    publish_model,
    unpack_model,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "tenants" / "acme" / "strat" / "1h_v1"
    path.mkdir(parents=True)
    (path / "model.pt").write_bytes(os.urandom(2048))
    (path / "metadata.json").write_text('{"strategy": "strat"}')
    (path / "metrics.json").write_text("{}")
    (path / "stray.txt").write_text("not a model file")
    return path


@pytest.fixture
def store(tmp_path: Path) -> FilesystemArtifactStore:
    return FilesystemArtifactStore(tmp_path / "artifacts")


def test_packing_is_deterministic_and_holds_only_model_files(folder: Path, tmp_path: Path) -> None:
    pack_model(folder, tmp_path / "a.tar")
    os.utime(folder / "model.pt", (1, 1))  # times are not part of the bytes
    pack_model(folder, tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        assert tar.getnames() == ["model.pt", "metrics.json", "metadata.json"]


def test_a_folder_without_its_weights_is_not_packed(folder: Path, tmp_path: Path) -> None:
    (folder / "model.pt").unlink()
    with pytest.raises(FileNotFoundError, match="model.pt"):
        pack_model(folder, tmp_path / "x.tar")


def test_publish_allocates_the_next_version_per_tenant_and_verifies(
    folder: Path, store: FilesystemArtifactStore, tmp_path: Path
) -> None:
    first = publish_model(store, folder, tenant="acme", strategy="strat", timeframe="1h")
    second = publish_model(store, folder, tenant="acme", strategy="strat", timeframe="1h")
    other = publish_model(store, folder, tenant="globex", strategy="strat", timeframe="1h")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert second.artifact.key == model_key("acme", "strat", "1h", 2)
    pack_model(folder, tmp_path / "expected.tar")
    expected = hashlib.sha256((tmp_path / "expected.tar").read_bytes()).hexdigest()
    assert first.artifact.sha256 == second.artifact.sha256 == expected
    assert not list(folder.parent.glob(".publish-*"))  # the packed tar is gone


def test_a_version_taken_meanwhile_is_skipped(folder: Path, store: FilesystemArtifactStore) -> None:
    store.put_bytes(model_key("acme", "strat", "1h", 1), b"someone else's")
    store.put_bytes(model_key("acme", "strat", "1h", 2), b"someone else's")
    published = publish_model(store, folder, tenant="acme", strategy="strat", timeframe="1h")
    assert published.version == 3


def test_unpack_verifies_and_caches(
    folder: Path, store: FilesystemArtifactStore, tmp_path: Path
) -> None:
    published = publish_model(store, folder, tenant="acme", strategy="strat", timeframe="1h")
    info = published.artifact
    cache = tmp_path / "cache"
    path = unpack_model(store, info.key, info.sha256, cache)
    assert path == cache / info.sha256
    assert (path / "model.pt").read_bytes() == (folder / "model.pt").read_bytes()
    assert not (path / "stray.txt").exists()
    assert unpack_model(store, info.key, info.sha256, cache) == path  # cached
    with pytest.raises(CorruptArtifact):
        unpack_model(store, info.key, "0" * 64, cache)  # not what the registry announced


def test_an_archive_with_other_members_is_refused(
    store: FilesystemArtifactStore, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"x"
        member = tarfile.TarInfo("../../etc/evil")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    info = store.put_bytes("models/acme/strat/1h/v1.tar", buffer.getvalue())
    with pytest.raises(CorruptArtifact, match="unexpected member"):
        unpack_model(store, info.key, info.sha256, tmp_path / "cache")
    assert not (tmp_path / "etc").exists()


def test_crashed_saves_are_cleaned_once_old(store: FilesystemArtifactStore, tmp_path: Path) -> None:
    models = tmp_path / "models"
    tmp_folder = models / "tenants" / "acme" / "strat" / ".tmp-1h-abc"
    tmp_folder.mkdir(parents=True)
    (tmp_folder / "model.pt").write_bytes(b"half")
    packed = models / "tenants" / "acme" / "strat" / ".publish-x.tar"
    packed.write_bytes(b"half")
    kept = models / "tenants" / "acme" / "strat" / "1h_v1"
    kept.mkdir()
    (store.root / PARTIAL_DIR).mkdir(parents=True)
    (store.root / PARTIAL_DIR / "crashed.tmp").write_bytes(b"half")
    assert clean_crashed_saves(store, models, older_than_s=3600) == 0  # maybe still running
    old = time.time() - 7200
    for path in (tmp_folder, packed, store.root / PARTIAL_DIR / "crashed.tmp"):
        os.utime(path, (old, old))
    assert clean_crashed_saves(store, models, older_than_s=3600) == 3
    assert not tmp_folder.exists() and not packed.exists() and kept.is_dir()
    assert not any((store.root / PARTIAL_DIR).iterdir())
