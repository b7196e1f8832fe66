"""One place that turns an artifacts URL into an ArtifactStore."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from libs.artifacts.filesystem import FilesystemArtifactStore
from libs.artifacts.port import ArtifactStore


class UnsupportedArtifactsUrl(ValueError):
    """An artifacts URL whose scheme no backend serves."""


def artifact_store_from_url(url: str) -> ArtifactStore:
    """`file:///abs/path`, or a plain (relative or absolute) path: the filesystem backend."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # 1 letter: a Windows drive
        root = unquote(parsed.path) if parsed.scheme == "file" else url
        return FilesystemArtifactStore(Path(root))
    raise UnsupportedArtifactsUrl(
        f"artifacts URL {url!r}: unsupported scheme {parsed.scheme!r}; use a path or file://"
    )
