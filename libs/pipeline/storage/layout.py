"""The on-disk layout of saved models: `models/{strategy}/{timeframe}_v{N}/` + a
`{timeframe}_latest` pointer, and the two race-free operations on it.

Models trained by the service live in their tenant's own tree,
`models/tenants/{tenant}/{strategy}/...` (`tenant_models_dir`), so each tenant has its own
version numbers; models trained outside the service (`ktrdr train`) keep `models/{strategy}/...`.
`tenants` is therefore not a strategy name (`names.TENANTS_FOLDER`).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from libs.pipeline import names

_MAX_VERSION_ATTEMPTS = 10_000


LATEST: Final = "latest"

# The names a model version goes by: its folder `{timeframe}_v{N}`, the pointer
# `{timeframe}_latest`, and without the timeframe `v{N}`, `{N}` or `latest`.
_FOLDER = re.compile(r"^(?P<tf>.+)_v(?P<n>\d+)$")
_TF_LATEST = re.compile(rf"^(?P<tf>.+)_{LATEST}$")
_NUMBER = re.compile(r"^v?(?P<n>\d+)$")

NameField = Literal["strategy", "timeframe", "tenant"]


_RULES = {"strategy": names.MODEL_FOLDER, "timeframe": names.MODEL_FOLDER, "tenant": names.TENANT}


class ModelNameError(ValueError):
    """A strategy, timeframe or tenant that is not a safe folder name; `field` says which."""

    def __init__(self, field: NameField, value: str) -> None:
        self.field: NameField = field
        self.value = value
        rule = _RULES[field].rule()
        if field == "strategy":
            rule += f", not {names.TENANTS_FOLDER!r}"
        super().__init__(f"{field}: {value!r} is not a valid model name; use {rule}")


def validate_name(field: NameField, value: str) -> str:
    """A strategy, timeframe or tenant used as a folder name: it must not escape models_dir,
    and a strategy folder must not be the tenants' folder."""
    if not _RULES[field].matches(value) or (field == "strategy" and value == names.TENANTS_FOLDER):
        raise ModelNameError(field, value)
    return value


def tenant_models_dir(models_dir: Path, tenant: str) -> Path:
    """The root of one tenant's models: `{models_dir}/tenants/{tenant}`."""
    return Path(models_dir) / names.TENANTS_FOLDER / validate_name("tenant", tenant)


def tenant_dirs(models_dir: Path) -> list[tuple[str, Path]]:
    """(tenant, its models root) for every tenant folder under `models_dir`, by name."""
    root = Path(models_dir) / names.TENANTS_FOLDER
    if not root.is_dir() or root.is_symlink():
        return []
    return [
        (entry.name, entry)
        for entry in sorted(root.iterdir())
        if entry.is_dir() and not entry.is_symlink() and names.TENANT.matches(entry.name)
    ]


@dataclass(frozen=True)
class VersionRef:
    """A reference to one saved model of a strategy: `timeframe` None = the strategy's only
    timeframe key; `version` a number or "latest"."""

    timeframe: str | None
    version: int | Literal["latest"]


def parse_version_ref(text: str) -> VersionRef | None:
    """`1h_v3` -> (1h, 3), `1h_latest` -> (1h, latest), `v3` / `3` -> (None, 3),
    `latest` -> (None, latest); None for anything else."""
    if text == LATEST:
        return VersionRef(None, LATEST)
    if match := _TF_LATEST.match(text):
        return VersionRef(match["tf"], LATEST)
    if match := _FOLDER.match(text):
        return VersionRef(match["tf"], int(match["n"]))
    if match := _NUMBER.match(text):
        return VersionRef(None, int(match["n"]))
    return None


def parse_version_dir(name: str) -> tuple[str, int] | None:
    """(timeframe, version) of a model folder name `{timeframe}_v{N}`; None for other names."""
    match = _FOLDER.match(name)
    return (match["tf"], int(match["n"])) if match else None


def version_dir_name(timeframe: str, version: int) -> str:
    return f"{timeframe}_v{version}"


def latest_pointer_name(timeframe: str) -> str:
    return f"{timeframe}_{LATEST}"


def existing_versions(strategy_dir: Path, timeframe: str) -> list[int]:
    if not strategy_dir.is_dir():
        return []
    found = (parse_version_dir(entry.name) for entry in os.scandir(strategy_dir))
    return sorted(ref[1] for ref in found if ref is not None and ref[0] == timeframe)


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
        link = strategy_dir / latest_pointer_name(timeframe)
        tmp = strategy_dir / f".{link.name}.{uuid.uuid4().hex}"
        try:
            os.symlink(newest, tmp, target_is_directory=True)
        except (OSError, NotImplementedError):  # no symlinks here: a one-line file instead
            tmp.write_text(newest + "\n")
        os.replace(tmp, link)


def read_latest_pointer(strategy_dir: Path, timeframe: str) -> int | None:
    link = strategy_dir / latest_pointer_name(timeframe)
    if link.is_symlink():
        name = os.readlink(link)
    elif link.is_file():
        name = link.read_text().strip()
    else:
        return None
    ref = parse_version_dir(os.path.basename(name))
    return ref[1] if ref is not None and ref[0] == timeframe else None


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
