"""Settings fields shared by everything that trains or serves models: where the strategies,
data and models live, and the torch device (DESIGN §6, env prefix KTRDR_).

Mixins for the services' and the CLI's pydantic-settings classes; instantiated in composition
roots only, never at import time. `train_strategy()` itself takes plain paths, not settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

_KTRDR_ENV = SettingsConfigDict(env_prefix="KTRDR_", extra="ignore")

DeviceChoice = Literal["auto", "cpu", "cuda", "mps"]  # see device.py (VALID_DEVICES)


class DataDirs(BaseSettings):
    """What a training reads and writes: KTRDR_DATA_DIR ({SYMBOL}_{TF}.csv), KTRDR_MODELS_DIR."""

    model_config = _KTRDR_ENV

    data_dir: Path = Path("data")
    models_dir: Path = Path("models")


class StrategyDirs(BaseSettings):
    """KTRDR_STRATEGIES_DIR: the strategy YAML files that requests may name."""

    model_config = _KTRDR_ENV

    strategies_dir: Path = Path("strategies")


class DeviceSetting(BaseSettings):
    """KTRDR_DEVICE: "auto" (CUDA > MPS > CPU) or one device, never a silent fallback."""

    model_config = _KTRDR_ENV

    device: DeviceChoice = "auto"
