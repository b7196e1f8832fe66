"""Saved models: writing one (five files), finding and listing them, loading for prediction.

A model folder appears complete or not at all: it is written into a temp folder beside its final
place and renamed into the next free version (model_dirs.py: the folder layout, version
allocation and the `{timeframe}_latest` pointer).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from libs.pipeline.loaded_model import LoadedModel, Prediction, load_model
from libs.pipeline.model_dirs import (
    existing_versions,
    fsync_dir,
    read_latest_pointer,
    rename_into_next_version,
    update_latest_pointer,
    validate_name,
    version_dir_name,
)
from libs.pipeline.request import SavedModel

__all__ = [
    "LoadedModel",
    "ModelInfo",
    "ModelNotFoundError",
    "Prediction",
    "list_models",
    "load_model",
    "resolve_model_path",
    "save_model",
    "validate_name",
]

MODEL_FILES = ("model.pt", "config.json", "metrics.json", "features.json", "metadata.json")


class ModelNotFoundError(LookupError):
    pass


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
        json.dump(payload, f, indent=2, sort_keys=False, default=_json_default)
        _flush(f)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (Path, datetime)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _flush(f: Any) -> None:
    f.flush()
    os.fsync(f.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- finding saved models ----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    strategy: str
    timeframe: str
    version: int
    path: Path
    created_at: str | None
    test_accuracy: float | None
    latest: bool


def resolve_model_path(
    models_dir: Path, strategy: str, timeframe: str | None = None, version: int | str = "latest"
) -> Path:
    """The folder of one saved model. `timeframe` may be left out when the strategy has models
    for one timeframe key only; `version` is a number or "latest"."""
    strategy_dir = Path(models_dir) / validate_name("strategy", strategy)
    keys = sorted({m.timeframe for m in list_models(models_dir, strategy=strategy)})
    if not keys:
        raise ModelNotFoundError(f"strategy: no saved models for {strategy!r} in {models_dir}")
    if timeframe is None:
        if len(keys) > 1:
            raise ModelNotFoundError(
                f"timeframe: {strategy!r} has models for several timeframes; pick one of "
                f"{', '.join(keys)}"
            )
        timeframe = keys[0]
    validate_name("timeframe", timeframe)
    versions = existing_versions(strategy_dir, timeframe)
    if version == "latest":
        number = read_latest_pointer(strategy_dir, timeframe)
        if number not in versions:  # pointer missing or stale: the highest version wins
            number = versions[-1] if versions else None
    else:
        number = int(version)
    if number is None or number not in versions:
        raise ModelNotFoundError(
            f"version: {strategy}/{timeframe} v{version} not found; available: "
            f"{', '.join(str(v) for v in versions) or 'none'} (timeframes: {', '.join(keys)})"
        )
    return strategy_dir / version_dir_name(timeframe, number)


def list_models(models_dir: Path, strategy: str | None = None) -> list[ModelInfo]:
    """Every complete model folder (temp folders of savers in progress are skipped)."""
    root = Path(models_dir)
    if strategy is not None:
        validate_name("strategy", strategy)
    if not root.is_dir():
        return []
    found: list[ModelInfo] = []
    for strategy_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if strategy is not None and strategy_dir.name != strategy:
            continue
        for entry in sorted(strategy_dir.iterdir()):
            m = re.fullmatch(r"(.+)_v(\d+)", entry.name)
            if not m or not (entry / "metadata.json").is_file() or entry.is_symlink():
                continue
            timeframe, version = m.group(1), int(m.group(2))
            meta = _read_json_or_empty(entry / "metadata.json")
            metrics = _read_json_or_empty(entry / "metrics.json")
            found.append(
                ModelInfo(
                    strategy=strategy_dir.name,
                    timeframe=timeframe,
                    version=version,
                    path=entry,
                    created_at=meta.get("created_at"),
                    test_accuracy=(metrics.get("test") or {}).get("accuracy"),
                    latest=read_latest_pointer(strategy_dir, timeframe) == version,
                )
            )
    return sorted(found, key=lambda i: (i.strategy, i.timeframe, i.version))


def _read_json_or_empty(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
