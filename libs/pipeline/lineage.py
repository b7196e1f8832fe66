"""A trained model's lineage: what it was trained from, on what, by which code.

Enough to tell two models apart and to retrain one: the strategy snapshot's hash, symbols,
timeframes, requested date range, seed, overrides, the sha256 of every data file read, the code
version, the device and the headline metrics. It lands in the model's `metadata.json` and, via
`TrainingResult.lineage`, in `Completed` (the models read model, `ktrdr models show`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from libs.pipeline.data.files import resolve_data_file
from libs.pipeline.jsonable import jsonable

_REPO = Path(__file__).resolve().parents[2]


def snapshot_sha256(snapshot: dict[str, Any]) -> str:
    """The hash of a strategy snapshot, independent of key order."""
    canonical = json.dumps(jsonable(snapshot), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_file_hashes(data_dir: Path, symbols: list[str], timeframes: list[str]) -> dict[str, str]:
    """{file name: sha256} of the files serving each (symbol, timeframe)."""
    hashes: dict[str, str] = {}
    for symbol in symbols:
        for timeframe in timeframes:
            source = resolve_data_file(Path(data_dir), symbol, timeframe)
            if source is not None and source.path.name not in hashes:
                hashes[source.path.name] = file_sha256(source.path)
    return dict(sorted(hashes.items()))


@functools.cache
def code_version() -> str:
    """The package version, plus the git commit when the code runs from a checkout (read from
    the repository's files: no subprocess)."""
    try:
        version = package_metadata.version("ktrdr-training")
    except package_metadata.PackageNotFoundError:
        version = "unknown"
    commit = _git_commit(_REPO)
    return f"{version}+g{commit[:12]}" if commit else version


def _git_commit(repo: Path) -> str | None:
    """HEAD's commit of the checkout at `repo` (a worktree too), or None."""
    try:
        dot_git = repo / ".git"
        if dot_git.is_file():  # a worktree: "gitdir: <its folder in the main repository>"
            git_dir = Path(dot_git.read_text().split(":", 1)[1].strip())
        elif dot_git.is_dir():
            git_dir = dot_git
        else:
            return None
        common = git_dir
        if (git_dir / "commondir").is_file():
            common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None  # detached
        ref = head.split(":", 1)[1].strip()
        for base in (git_dir, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip() or None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except (OSError, IndexError):
        return None
    return None


def headline_metrics(
    training_metrics: dict[str, Any], test_metrics: dict[str, Any]
) -> dict[str, Any]:
    """The few figures `models list` and `models compare` show first."""
    picked = {
        "test_accuracy": test_metrics.get("accuracy"),
        "test_balanced_accuracy": test_metrics.get("balanced_accuracy"),
        "verdict": test_metrics.get("verdict"),
        "best_epoch": training_metrics.get("best_epoch"),
        "val_loss": training_metrics.get("val_loss"),
        "val_accuracy": training_metrics.get("val_accuracy"),
    }
    return {k: v for k, v in picked.items() if v is not None}


def build_lineage(
    *,
    training_id: str | None,
    snapshot: dict[str, Any],
    symbols: list[str],
    timeframes: list[str],
    start_date: str | None,
    end_date: str | None,
    seed: int,
    overrides: dict[str, Any],
    data_dir: Path,
    device: dict[str, Any],
    training_metrics: dict[str, Any],
    test_metrics: dict[str, Any],
) -> dict[str, Any]:
    lineage = {
        "training_id": training_id,
        "strategy_sha256": snapshot_sha256(snapshot),
        "symbols": list(symbols),
        "timeframes": list(timeframes),
        "start_date": start_date,
        "end_date": end_date,
        "seed": seed,
        "overrides": dict(overrides),
        "data_files": data_file_hashes(data_dir, symbols, timeframes),
        "code_version": code_version(),
        "device": dict(device),
        "metrics": headline_metrics(training_metrics, test_metrics),
    }
    result: dict[str, Any] = jsonable(lineage)
    return result
