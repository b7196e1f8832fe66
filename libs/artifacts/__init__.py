"""The artifact store: bytes every process can reach (models, checkpoints), behind one port.

`port.py` is the contract; `filesystem.py` the embedded default (also for shared volumes);
`s3.py` S3-compatible object storage (AWS S3, MinIO) for deployments.
"""

from libs.artifacts.factory import UnsupportedArtifactsUrl, artifact_store_from_url
from libs.artifacts.port import (
    ArtifactExists,
    ArtifactInfo,
    ArtifactNotFound,
    ArtifactStore,
    CorruptArtifact,
    InvalidArtifactKey,
)

__all__ = [
    "ArtifactExists",
    "ArtifactInfo",
    "ArtifactNotFound",
    "ArtifactStore",
    "CorruptArtifact",
    "InvalidArtifactKey",
    "UnsupportedArtifactsUrl",
    "artifact_store_from_url",
]
