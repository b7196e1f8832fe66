"""Settings of the local commands (`ktrdr train`, `ktrdr models`): where strategies, data and
models live, and the device. Env prefix KTRDR_, the project's shared vocabulary; built inside the
command, never at import time."""

from __future__ import annotations

from pathlib import Path

from libs.pipeline import names
from libs.pipeline.settings import DataDirs, DeviceSetting, StrategyDirs


class LocalSettings(StrategyDirs, DataDirs, DeviceSetting):
    """strategies_dir, data_dir, models_dir and device: the shared fields, nothing else."""


class StrategyNotFoundError(LookupError):
    pass


def resolve_strategy(argument: str, strategies_dir: Path) -> Path:
    """STRATEGY as given to the CLI: a path to a YAML file, or a name in `strategies_dir`
    (`neuro_mean_reversion` → strategies/neuro_mean_reversion.yaml)."""
    given = Path(argument)
    if given.suffix.lower() in {".yaml", ".yml"} or given.parent != Path("."):
        if given.is_file():
            return given
        raise StrategyNotFoundError(f"strategy: file {given} does not exist")
    if not names.STRATEGY.matches(argument):
        raise StrategyNotFoundError(f"strategy: {argument!r} is not a file or a strategy name")
    for suffix in (".yaml", ".yml"):
        candidate = strategies_dir / f"{argument}{suffix}"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in strategies_dir.glob("*.y*ml")) if strategies_dir.is_dir() else []
    raise StrategyNotFoundError(
        f"strategy: no {argument}.yaml in {strategies_dir}; available: {', '.join(known) or 'none'}"
    )
