"""Finding saved models: listing every complete model folder and resolving one by strategy,
timeframe key and version (a number or "latest")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from libs.pipeline import names
from libs.pipeline.storage.layout import (
    LATEST,
    existing_versions,
    parse_version_dir,
    read_latest_pointer,
    validate_name,
    version_dir_name,
)


class ModelNotFoundError(LookupError):
    """No saved model answers the reference; `field` says which part of it found nothing
    (the strategy, its timeframe key, or the version)."""

    def __init__(self, field: Literal["strategy", "timeframe", "version"], message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


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
    models_dir: Path, strategy: str, timeframe: str | None = None, version: int | str = LATEST
) -> Path:
    """The folder of one saved model. `timeframe` may be left out when the strategy has models
    for one timeframe key only; `version` is a number or "latest"."""
    strategy_dir = Path(models_dir) / validate_name("strategy", strategy)
    keys = sorted({m.timeframe for m in list_models(models_dir, strategy=strategy)})
    if not keys:
        raise ModelNotFoundError("strategy", f"no saved models for {strategy!r}")
    if timeframe is None:
        if len(keys) > 1:
            raise ModelNotFoundError(
                "timeframe",
                f"{strategy!r} has models for several timeframes; pick one of {', '.join(keys)}",
            )
        timeframe = keys[0]
    validate_name("timeframe", timeframe)
    versions = existing_versions(strategy_dir, timeframe)
    if version == LATEST:
        number = read_latest_pointer(strategy_dir, timeframe)
        if number not in versions:  # pointer missing or stale: the highest version wins
            number = versions[-1] if versions else None
    else:
        number = int(version)
    if number is None or number not in versions:
        raise ModelNotFoundError(
            "version",
            f"{strategy}/{timeframe} v{version} not found; available: "
            f"{', '.join(str(v) for v in versions) or 'none'} (timeframes: {', '.join(keys)})",
        )
    return strategy_dir / version_dir_name(timeframe, number)


def list_models(models_dir: Path, strategy: str | None = None) -> list[ModelInfo]:
    """Every complete model folder directly under `models_dir` (temp folders of savers in
    progress are skipped; so is the tenants' folder, whose trees are listed one at a time)."""
    root = Path(models_dir)
    if strategy is not None:
        validate_name("strategy", strategy)
    if not root.is_dir():
        return []
    found: list[ModelInfo] = []
    for strategy_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if strategy_dir.name == names.TENANTS_FOLDER:
            continue
        if strategy is not None and strategy_dir.name != strategy:
            continue
        for entry in sorted(strategy_dir.iterdir()):
            ref = parse_version_dir(entry.name)
            if ref is None or not (entry / "metadata.json").is_file() or entry.is_symlink():
                continue
            timeframe, version = ref
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
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return {}
