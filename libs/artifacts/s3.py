"""The S3-compatible ArtifactStore (AWS S3, MinIO, any server speaking the S3 API), on boto3.

An object appears whole or not at all: a single PUT is atomic, and a multipart upload (files
above `multipart_threshold`) becomes visible only when it is completed, so a crashed write
leaves at most an unfinished multipart upload, which `clean_partial` aborts. The sha256 of the
bytes is computed while reading the source, sent as the request's `ChecksumSHA256` (a real S3
server refuses bytes that do not match it) and kept in the object's metadata, so `stat`
answers it without reading the object back.

Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a
profile, an instance role); never from the artifacts URL.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

from libs.artifacts.port import (
    ArtifactExists,
    ArtifactInfo,
    ArtifactNotFound,
    CorruptArtifact,
    check_key,
)

SHA256_METADATA = "sha256"
_CHUNK = 1 << 20
DEFAULT_MULTIPART_THRESHOLD = 64 << 20
_MIN_PART = 5 << 20  # S3's smallest part (but the last)


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


_MISSING = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION = {"412", "PreconditionFailed", "ConditionalRequestConflict"}


class S3ArtifactStore:
    """Objects under `s3://{bucket}/{prefix}{key}`."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = 16 << 20,
    ) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.multipart_threshold = multipart_threshold
        self.part_size = max(part_size, _MIN_PART)

    def __repr__(self) -> str:
        return f"S3ArtifactStore(s3://{self.bucket}/{self.prefix})"

    def _object(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    # --- writes --------------------------------------------------------------------------------

    def _put(self, key: str, path: Path, *, if_absent: bool) -> tuple[str, int]:
        name = self._object(key)
        sha256, size = _sha256_file(path)
        conditional = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            if size <= self.multipart_threshold:
                with open(path, "rb") as f:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=name,
                        Body=f,
                        ContentLength=size,
                        ChecksumSHA256=_b64(sha256),
                        Metadata={SHA256_METADATA: sha256},
                        **conditional,
                    )
            else:
                self._multipart(name, path, sha256, conditional)
        except Exception as error:
            if if_absent and _code(error) in _PRECONDITION:
                raise ArtifactExists(key) from None
            raise
        return sha256, size

    def _multipart(self, name: str, path: Path, sha256: str, conditional: dict[str, str]) -> None:
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=name, Metadata={SHA256_METADATA: sha256}
        )
        upload_id = upload["UploadId"]
        parts = []
        try:
            with open(path, "rb") as f:
                number = 1
                while chunk := f.read(self.part_size):
                    answer = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                        ContentMD5=base64.b64encode(hashlib.md5(chunk).digest()).decode(),
                    )
                    parts.append({"ETag": answer["ETag"], "PartNumber": number})
                    number += 1
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **conditional,
            )
        except BaseException:
            # A clean failure aborts here; a killed process leaves it to clean_partial.
            with contextlib.suppress(Exception):  # the original error is the one to report
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            raise

    def _verified(self, key: str, sha256: str, size: int) -> ArtifactInfo:
        stored = self.stat(key)
        if stored is None or stored.size != size or stored.sha256 != sha256:
            raise CorruptArtifact(f"{key}: the stored object does not match what was written")
        return ArtifactInfo(key, self._uri(key), size, sha256)

    def put_file(self, key: str, path: Path) -> ArtifactInfo:
        sha256, size = self._put(key, Path(path), if_absent=False)
        return self._verified(key, sha256, size)

    def create_file(self, key: str, path: Path) -> ArtifactInfo:
        sha256, size = self._put(key, Path(path), if_absent=True)
        return self._verified(key, sha256, size)

    def put_bytes(self, key: str, data: bytes) -> ArtifactInfo:
        name = self._object(key)
        sha256 = hashlib.sha256(data).hexdigest()
        self.client.put_object(
            Bucket=self.bucket,
            Key=name,
            Body=data,
            ChecksumSHA256=_b64(sha256),
            Metadata={SHA256_METADATA: sha256},
        )
        return ArtifactInfo(key, self._uri(key), len(data), sha256)

    # --- reads ---------------------------------------------------------------------------------

    def stat(self, key: str) -> ArtifactInfo | None:
        name = self._object(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        except Exception as error:
            if _code(error) in _MISSING:
                return None
            raise
        sha256 = (head.get("Metadata") or {}).get(SHA256_METADATA)
        if not sha256:  # put there by another tool: read it once to know
            digest = hashlib.sha256()
            for chunk in self.iter_chunks(key):
                digest.update(chunk)
            sha256 = digest.hexdigest()
        return ArtifactInfo(key, self._uri(key), int(head["ContentLength"]), sha256)

    def open(self, key: str) -> BinaryIO:
        name = self._object(key)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=name)
        except Exception as error:
            if _code(error) in _MISSING:
                raise ArtifactNotFound(key) from None
            raise
        return cast(BinaryIO, answer["Body"])

    def get_bytes(self, key: str) -> bytes:
        body = self.open(key)
        try:
            return body.read()
        finally:
            body.close()

    def get_file(self, key: str, path: Path) -> ArtifactInfo:
        expected = self.stat(key)
        if expected is None:
            raise ArtifactNotFound(key)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        digest = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as f:
                for chunk in self.iter_chunks(key):
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            if digest.hexdigest() != expected.sha256 or size != expected.size:
                raise CorruptArtifact(f"{key}: the bytes read do not match the stored sha256")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ArtifactInfo(key, self._uri(key), size, expected.sha256)

    def iter_chunks(self, key: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        body = self.open(key)
        try:
            yield from iter(lambda: body.read(chunk_size), b"")
        finally:
            body.close()

    def list(self, prefix: str = "") -> list[ArtifactInfo]:
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.prefix) :]
                info = self.stat(key)
                if info is not None:
                    found.append(ArtifactInfo(key, info.uri, info.size, info.sha256))
        return sorted(found, key=lambda info: info.key)

    def delete(self, key: str) -> bool:
        if self.stat(key) is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self._object(key))
        return True

    def clean_partial(self, older_than_s: float = 3600.0) -> int:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        removed = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in page.get("Uploads", ()):
                initiated = upload["Initiated"]
                if initiated.tzinfo is None:
                    initiated = initiated.replace(tzinfo=UTC)
                if initiated <= cutoff:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        return removed
