"""The artifact store: bytes every process can reach (models, checkpoints), behind one port.

`port.py` is the contract; `filesystem.py` the embedded default (also for shared volumes).
"""

from libs.artifacts.factory import UnsupportedArtifactsUrl, artifact_store_from_url
from libs.artifacts.port import ArtifactInfo, ArtifactNotFound, ArtifactStore, InvalidArtifactKey

__all__ = [
    "ArtifactInfo",
    "ArtifactNotFound",
    "ArtifactStore",
    "InvalidArtifactKey",
    "UnsupportedArtifactsUrl",
    "artifact_store_from_url",
]
