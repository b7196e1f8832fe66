"""One behaviour, every adapter: each test runs on the filesystem store and on the S3 store
against a real S3-compatible server (moto's, started here)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from libs.artifacts import (
    ArtifactExists,
    ArtifactNotFound,
    ArtifactStore,
    InvalidArtifactKey,
    artifact_store_from_url,
)
from libs.artifacts.filesystem import PARTIAL_DIR, FilesystemArtifactStore
from libs.artifacts.s3 import S3ArtifactStore
from tests.support.s3 import S3_ENV, S3Server, s3_server


@dataclass
class Backend:
    store: ArtifactStore
    crash_a_write: Callable[[str], None]  # leave what a writer killed mid-write leaves
    # moto's server reports one fixed date as every multipart upload's start time (real S3 and
    # MinIO report the real one), so "too young to clean" cannot be checked against it.
    real_write_times: bool = True


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture(params=["filesystem", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "filesystem":
        store = FilesystemArtifactStore(tmp_path / "artifacts")

        def crash_fs(key: str) -> None:
            partial = store.root / PARTIAL_DIR
            partial.mkdir(parents=True, exist_ok=True)
            (partial / "crashed.tmp").write_bytes(b"half of it")

        return Backend(store, crash_fs)
    server: S3Server = request.getfixturevalue("s3")
    client = server.client()
    s3_store = S3ArtifactStore(server.new_bucket(), "some/prefix", client=client)

    def crash_s3(key: str) -> None:
        upload = client.create_multipart_upload(Bucket=s3_store.bucket, Key=s3_store._object(key))
        client.upload_part(
            Bucket=s3_store.bucket,
            Key=s3_store._object(key),
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"half of it",
        )

    return Backend(s3_store, crash_s3, real_write_times=False)


def _file(tmp_path: Path, data: bytes, name: str = "blob.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_put_then_read_back_bytes_size_and_sha256(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    data = os.urandom(3000)
    info = store.put_file("models/t/s/1h/v1.tar", _file(tmp_path, data))
    assert (info.key, info.size, info.sha256) == (
        "models/t/s/1h/v1.tar",
        3000,
        hashlib.sha256(data).hexdigest(),
    )
    assert store.stat(info.key) == info
    assert store.get_bytes(info.key) == data
    with store.open(info.key) as f:
        assert f.read() == data
    assert b"".join(store.iter_chunks(info.key, chunk_size=1000)) == data
    copied = store.get_file(info.key, tmp_path / "out" / "copy.bin")
    assert (tmp_path / "out" / "copy.bin").read_bytes() == data
    assert copied.sha256 == info.sha256


def test_put_bytes_and_replace(backend: Backend) -> None:
    store = backend.store
    first = store.put_bytes("a/b", b"one")
    second = store.put_bytes("a/b", b"two!")
    assert first.sha256 != second.sha256
    assert store.get_bytes("a/b") == b"two!"
    assert store.stat("a/b") == second


def test_create_file_refuses_a_taken_key(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    store.create_file("k/v1", _file(tmp_path, b"first"))
    with pytest.raises(ArtifactExists):
        store.create_file("k/v1", _file(tmp_path, b"second", "other.bin"))
    assert store.get_bytes("k/v1") == b"first"


def test_create_file_race_has_exactly_one_winner(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    paths = [_file(tmp_path, f"writer {i}".encode(), f"w{i}.bin") for i in range(6)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(paths))

    def write(path: Path) -> None:
        barrier.wait()
        try:
            store.create_file("race/v1", path)
            outcomes.append(path.read_text())
        except ArtifactExists:
            outcomes.append("lost")

    threads = [threading.Thread(target=write, args=(p,)) for p in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o != "lost"]
    assert len(winners) == 1 and len(outcomes) == len(paths)
    assert store.get_bytes("race/v1").decode() == winners[0]


def test_missing_keys(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    assert store.stat("no/such") is None
    with pytest.raises(ArtifactNotFound):
        store.get_bytes("no/such")
    with pytest.raises(ArtifactNotFound):
        store.open("no/such")
    with pytest.raises(ArtifactNotFound):
        store.get_file("no/such", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert store.delete("no/such") is False


def test_list_by_prefix_sorted_and_delete(backend: Backend) -> None:
    store = backend.store
    for key in ("m/b/2", "m/a/1", "n/c", "m/a/0"):
        store.put_bytes(key, key.encode())
    assert [i.key for i in store.list("m/")] == ["m/a/0", "m/a/1", "m/b/2"]
    assert [i.key for i in store.list()] == ["m/a/0", "m/a/1", "m/b/2", "n/c"]
    assert store.delete("m/a/1") is True
    assert store.stat("m/a/1") is None
    assert [i.key for i in store.list("m/a")] == ["m/a/0"]


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "../up", "a/../b", "a/.hidden", "a b"])
def test_unsafe_keys_are_refused(backend: Backend, key: str) -> None:
    with pytest.raises(InvalidArtifactKey):
        backend.store.put_bytes(key, b"x")
    with pytest.raises(InvalidArtifactKey):
        backend.store.stat(key)


def test_a_crashed_write_is_invisible_and_cleaned(backend: Backend) -> None:
    store = backend.store
    backend.crash_a_write("models/t/s/1h/v9.tar")
    assert store.stat("models/t/s/1h/v9.tar") is None
    assert store.list() == []
    if backend.real_write_times:
        assert store.clean_partial(older_than_s=3600) == 0  # young: may still be in progress
    time.sleep(0.01)  # the leftover must be strictly older than "0 s ago"
    assert store.clean_partial(older_than_s=0) == 1
    assert store.clean_partial(older_than_s=0) == 0


def test_s3_multipart_upload_round_trip(s3: S3Server, tmp_path: Path) -> None:
    store = S3ArtifactStore(
        s3.new_bucket(), "", client=s3.client(), multipart_threshold=1 << 20, part_size=5 << 20
    )
    data = os.urandom((5 << 20) + 12345)  # two parts
    info = store.create_file("big/v1", _file(tmp_path, data))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert store.stat("big/v1") == info
    assert store.get_bytes("big/v1") == data
    with pytest.raises(ArtifactExists):
        store.create_file("big/v1", _file(tmp_path, data))


def test_url_factory(s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    bucket = s3.new_bucket()
    store = artifact_store_from_url(f"s3://{bucket}/pre", s3_endpoint_url=s3.endpoint_url)
    assert isinstance(store, S3ArtifactStore)
    info = store.put_bytes("x/y", b"hello")
    assert info.uri == f"s3://{bucket}/pre/x/y"
    fs = artifact_store_from_url(str(tmp_path / "a"))
    assert isinstance(fs, FilesystemArtifactStore)
    assert fs.put_bytes("x/y", b"hello").uri == (tmp_path / "a" / "x" / "y").as_uri()
