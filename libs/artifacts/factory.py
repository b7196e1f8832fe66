"""One place that turns an artifacts URL into an ArtifactStore."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from libs.artifacts.filesystem import FilesystemArtifactStore
from libs.artifacts.port import ArtifactStore


class UnsupportedArtifactsUrl(ValueError):
    """An artifacts URL whose scheme no backend serves."""


def artifact_store_from_url(
    url: str, *, s3_endpoint_url: str | None = None, s3_region: str | None = None
) -> ArtifactStore:
    """`file:///abs/path` or a plain (relative or absolute) path: the filesystem backend;
    `s3://bucket/prefix`: S3-compatible object storage at `s3_endpoint_url` (None: AWS)."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # 1 letter: a Windows drive
        root = unquote(parsed.path) if parsed.scheme == "file" else url
        return FilesystemArtifactStore(Path(root))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise UnsupportedArtifactsUrl(f"artifacts URL {url!r}: name a bucket, s3://bucket/")
        from libs.artifacts.s3 import S3ArtifactStore  # boto3: only where S3 is used

        return S3ArtifactStore(
            parsed.netloc, unquote(parsed.path), endpoint_url=s3_endpoint_url, region=s3_region
        )
    raise UnsupportedArtifactsUrl(
        f"artifacts URL {url!r}: unsupported scheme {parsed.scheme!r}; use a path, file:// "
        "or s3://bucket/prefix"
    )
