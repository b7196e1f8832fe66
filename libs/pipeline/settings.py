"""Settings fields shared by everything that trains or serves models: where the strategies,
data and models live, and the torch device (architecture.md §3, env prefix KTRDR_).

Mixins for the services' and the CLI's pydantic-settings classes; instantiated in composition
roots only, never at import time. `train_strategy()` itself takes plain paths, not settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from libs.settings import KtrdrSettings

DeviceChoice = Literal["auto", "cpu", "cuda", "mps"]  # see device.py (VALID_DEVICES)


class DataDirs(KtrdrSettings):
    """What a training reads and writes: KTRDR_DATA_DIR ({SYMBOL}_{TF}.csv), KTRDR_MODELS_DIR."""

    data_dir: Path = Path("data")
    models_dir: Path = Path("models")


class StrategyDirs(KtrdrSettings):
    """KTRDR_STRATEGIES_DIR: the strategy YAML files that requests may name."""

    strategies_dir: Path = Path("strategies")


class DeviceSetting(KtrdrSettings):
    """KTRDR_DEVICE: "auto" (CUDA > MPS > CPU) or one device, never a silent fallback."""

    device: DeviceChoice = "auto"
