"""Saving a trained model: five files in a folder of its own.

A model folder appears complete or not at all: it is written into a temp folder beside its final
place and renamed into the next free version (layout.py: the folder layout, version allocation
and the `{timeframe}_latest` pointer).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from libs.pipeline.jsonable import jsonable
from libs.pipeline.request import SavedModel
from libs.pipeline.storage.layout import (
    fsync_dir,
    rename_into_next_version,
    update_latest_pointer,
    validate_name,
)

MODEL_FILES = ("model.pt", "config.json", "metrics.json", "features.json", "metadata.json")


def save_model(
    models_dir: Path,
    *,
    strategy: str,
    timeframe: str,
    model: nn.Module,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    features: Mapping[str, Any],
    metadata: Mapping[str, Any],
) -> SavedModel:
    """Write the five files, rename them into the next free version, move the latest pointer."""
    strategy_dir = Path(models_dir) / validate_name("strategy", strategy)
    validate_name("timeframe", timeframe)
    strategy_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{timeframe}-", dir=strategy_dir))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the API/other users must read models
        state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
        with open(tmp / "model.pt", "wb") as f:
            torch.save(state, f)
            _flush(f)
        full_metadata = {
            **metadata,
            "strategy": strategy,
            "timeframe": timeframe,
            "created_at": datetime.now(UTC).isoformat(),
            "torch_version": torch.__version__,
        }
        for name, payload in (
            ("config.json", config),
            ("metrics.json", metrics),
            ("features.json", features),
            ("metadata.json", full_metadata),
        ):
            _write_json(tmp / name, payload)
        sha256 = _sha256(tmp / "model.pt")
        size = sum(p.stat().st_size for p in tmp.iterdir())
        target, version = rename_into_next_version(tmp, strategy_dir, timeframe)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(strategy_dir)
    update_latest_pointer(strategy_dir, timeframe)
    return SavedModel(strategy, timeframe, version, target, sha256, size)


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(jsonable(payload, strict=True), f, indent=2, sort_keys=False, allow_nan=False)
        _flush(f)


def _flush(f: Any) -> None:
    f.flush()
    os.fsync(f.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
