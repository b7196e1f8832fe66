"""KTRDR_ARTIFACTS_URL: where models and checkpoints are stored (architecture.md §3)."""

from __future__ import annotations

from libs.settings import KtrdrSettings


class ArtifactSettings(KtrdrSettings):
    """A plain path or `file://` URL is the filesystem backend (the embedded default; a shared
    volume in a deployment)."""

    artifacts_url: str = "artifacts"
