"""The on-disk layout of saved models: `models/{strategy}/{timeframe}_v{N}/` + a
`{timeframe}_latest` pointer, and the two race-free operations on it.

Versions are allocated without a lock: a finished model folder is renamed into place, and
rename(2) refuses to replace a non-empty folder, so of two savers racing for v{N} one wins and
the other retries with N+1. The latest pointer (a symlink, or a one-line file where symlinks are
unavailable) is replaced atomically under an advisory file lock, always with the highest version
then present, so a slow saver finishing last cannot point it back at an older model.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

from libs.pipeline import names

_MAX_VERSION_ATTEMPTS = 10_000


def validate_name(field: str, value: str) -> str:
    """A strategy or timeframe used as a folder name: it must not escape models_dir."""
    if not names.MODEL_FOLDER.matches(value):
        raise ValueError(
            f"{field}: {value!r} is not a valid model name; use {names.MODEL_FOLDER.rule()}"
        )
    return value


def version_dir_name(timeframe: str, version: int) -> str:
    return f"{timeframe}_v{version}"


def existing_versions(strategy_dir: Path, timeframe: str) -> list[int]:
    pattern = re.compile(rf"^{re.escape(timeframe)}_v(\d+)$")
    if not strategy_dir.is_dir():
        return []
    found = (pattern.match(entry.name) for entry in os.scandir(strategy_dir))
    return sorted(int(m.group(1)) for m in found if m)


def rename_into_next_version(tmp: Path, strategy_dir: Path, timeframe: str) -> tuple[Path, int]:
    """Rename the finished folder `tmp` to the next free `{timeframe}_v{N}`."""
    version = max(existing_versions(strategy_dir, timeframe), default=0) + 1
    for _ in range(_MAX_VERSION_ATTEMPTS):
        target = strategy_dir / version_dir_name(timeframe, version)
        try:
            os.rename(tmp, target)  # fails when target is a non-empty folder: someone has it
            return target, version
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            version = max(version, *existing_versions(strategy_dir, timeframe)) + 1
    raise RuntimeError(f"could not allocate a model version in {strategy_dir}")


def update_latest_pointer(strategy_dir: Path, timeframe: str) -> None:
    with _locked(strategy_dir / ".lock"):
        versions = existing_versions(strategy_dir, timeframe)
        if not versions:
            return
        newest = version_dir_name(timeframe, versions[-1])
        link = strategy_dir / f"{timeframe}_latest"
        tmp = strategy_dir / f".{timeframe}_latest.{uuid.uuid4().hex}"
        try:
            os.symlink(newest, tmp, target_is_directory=True)
        except (OSError, NotImplementedError):  # no symlinks here: a one-line file instead
            tmp.write_text(newest + "\n")
        os.replace(tmp, link)


def read_latest_pointer(strategy_dir: Path, timeframe: str) -> int | None:
    link = strategy_dir / f"{timeframe}_latest"
    if link.is_symlink():
        name = os.readlink(link)
    elif link.is_file():
        name = link.read_text().strip()
    else:
        return None
    m = re.fullmatch(rf"{re.escape(timeframe)}_v(\d+)", os.path.basename(name))
    return int(m.group(1)) if m else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: the pointer is still replaced atomically, just not ordered
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform / filesystem
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
