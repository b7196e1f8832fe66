"""What `train_strategy()` takes and returns. Plain data: serialisable, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainingRequest:
    # The strategy as a mapping in KTRDR format (the resolved snapshot carried by
    # TrainingRequested) -- never a path, so every entry point trains the same config.
    strategy: dict[str, Any]
    data_dir: Path
    models_dir: Path
    symbols: list[str] | None = None  # override the strategy's symbols
    timeframes: list[str] | None = None  # override the strategy's timeframes
    start_date: str | None = None  # ISO date/datetime, inclusive, UTC
    end_date: str | None = None  # ISO date/datetime, inclusive, UTC
    # epochs, batch_size, learning_rate, ... applied on top of model.training
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    device: str = "auto"  # auto | cpu | cuda | mps
    training_id: str | None = None  # recorded in metadata.json when trained by the service


@dataclass(frozen=True)
class SavedModel:
    strategy: str
    timeframe: str
    version: int
    path: Path
    sha256: str  # of model.pt
    bytes: int  # total size of the model folder


@dataclass(frozen=True)
class TrainingResult:
    model: SavedModel
    training_metrics: dict[str, Any]  # history, best_epoch, final train/val loss+accuracy
    test_metrics: dict[str, Any]  # accuracy, per-class P/R/F1, confusion, baseline, importance
    duration_s: float
    device: dict[str, Any]  # {type, name, ...} from DeviceManager
    warnings: list[str] = field(default_factory=list)  # e.g. sections not used by training
    # What the model was trained from (libs/pipeline/lineage.py); also in its metadata.json.
    lineage: dict[str, Any] = field(default_factory=dict)
