"""The bus trainer's checkpoints, on the artifact store: the CheckpointSink of one training.

Keys: `checkpoints/{tenant}/{training_id}/e{epoch:06d}-b{batch:06d}.ckpt`, so the newest is the
last in key order and its position reads off the key. Every write is atomic (the store's
promise); the newest `keep` are kept, older ones deleted once a newer one is stored. Any
trainer that shares the store (a shared volume, S3) can continue the training, so a training
resumes on another machine. Once the training reaches its terminal event its checkpoints are
deleted (`discard`).

A checkpoint that cannot be read back (a half-copied restore, a format this code does not
read) is skipped for the one before it: resuming from an older checkpoint is still exact.
"""

from __future__ import annotations

import logging
import re

from libs.artifacts.port import ArtifactNotFound, ArtifactStore
from libs.metrics import observe_checkpoint
from libs.pipeline.training.checkpoint import Position, position_of

log = logging.getLogger("ktrdr.trainer.checkpoints")

_NAME = re.compile(r"e(\d{6,})-b(\d{6,})\.ckpt$")
PREFIX = "checkpoints"


class ArtifactCheckpoints:
    def __init__(
        self,
        store: ArtifactStore,
        tenant: str,
        training_id: str,
        *,
        keep: int = 3,
        interval_s: float | None = None,
    ) -> None:
        self.store = store
        self.prefix = f"{PREFIX}/{tenant}/{training_id}/"
        self.keep = max(1, keep)
        self.interval_s = interval_s
        self._resume: tuple[Position, bytes] | None = None
        self._looked = False

    # --- the CheckpointSink protocol (called from the training thread) -------------------------
    def latest(self) -> bytes | None:
        found = self.resume_point()
        return found[1] if found else None

    def save(self, data: bytes, position: Position) -> None:
        key = f"{self.prefix}e{position.epoch:06d}-b{position.batch:06d}.ckpt"
        with observe_checkpoint("save"):  # ktrdr_checkpoint_seconds{phase="save"}
            self.store.put_bytes(key, data)
        for old in self._keys()[: -self.keep]:
            self.store.delete(old)

    # --- for the trainer -----------------------------------------------------------------------
    def resume_point(self) -> tuple[Position, bytes] | None:
        """The newest readable checkpoint and where it stands (looked up once per run)."""
        if not self._looked:
            self._looked = True
            self._resume = self._newest_readable()
        return self._resume

    def discard(self) -> int:
        """Delete every checkpoint of the training (it reached its terminal event)."""
        keys = self._keys()
        for key in keys:
            self.store.delete(key)
        return len(keys)

    def _keys(self) -> list[str]:
        return [info.key for info in self.store.list(self.prefix) if _NAME.search(info.key)]

    def _newest_readable(self) -> tuple[Position, bytes] | None:
        for key in reversed(self._keys()):
            try:
                with observe_checkpoint("load"):
                    data = self.store.get_bytes(key)
                return position_of(data), data
            except ArtifactNotFound:
                continue  # pruned by a newer run meanwhile
            except Exception as error:
                log.warning("checkpoint %s is unreadable (%s); trying an older one", key, error)
        return None
