"""KTRDR_ARTIFACTS_URL: where models and checkpoints are stored (architecture.md §3)."""

from __future__ import annotations

from libs.artifacts.factory import artifact_store_from_url
from libs.artifacts.port import ArtifactStore
from libs.settings import KtrdrSettings


class ArtifactSettings(KtrdrSettings):
    """A plain path or `file://` URL is the filesystem backend (the embedded default; a shared
    volume in a deployment); `s3://bucket/prefix` is S3-compatible object storage, at
    `artifacts_s3_endpoint_url` (MinIO, ...; unset: AWS). S3 credentials come from boto3's
    own chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, a profile or a role)."""

    artifacts_url: str = "artifacts"
    artifacts_s3_endpoint_url: str | None = None
    artifacts_s3_region: str | None = None

    def artifact_store(self) -> ArtifactStore:
        return artifact_store_from_url(
            self.artifacts_url,
            s3_endpoint_url=self.artifacts_s3_endpoint_url,
            s3_region=self.artifacts_s3_region,
        )
