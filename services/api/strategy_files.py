"""Strategies by name or as YAML text: safe lookup, safe parsing, and field errors.

- A strategy name is a file stem in `strategies_dir`; it can never escape that folder (no
  separators, no `..`, the resolved path must stay inside).
- YAML text from a client is parsed HERE (safe_load, size-limited, no anchors/aliases: an alias
  bomb is tiny as text but expands exponentially once the snapshot is serialised) and handed to
  the pipeline as a mapping -- never as a string, which `load_strategy` would read as a file
  path if it looked like one.
- The pipeline's `StrategyConfigError` carries one "path: reason" line per problem; each becomes
  a field error under the request field that carried the strategy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from services.api.errors import FieldError, invalid, invalid_many

STRATEGY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
SUFFIXES = (".yaml", ".yml")


def strategy_names(strategies_dir: Path) -> list[str]:
    if not strategies_dir.is_dir():
        return []
    return sorted(
        p.stem
        for p in strategies_dir.iterdir()
        if p.suffix in SUFFIXES and p.is_file() and STRATEGY_NAME.match(p.stem)
    )


def strategy_path(strategies_dir: Path, name: str, *, field: str = "strategy") -> Path:
    """The file for `name`, or a 422 naming `field` (a bad or unknown name)."""
    if not STRATEGY_NAME.match(name) or ".." in name:
        raise invalid(
            field,
            "must be a strategy name (letters, digits, '_', '-', '.'; no path separators or '..')",
        )
    root = strategies_dir.resolve()
    for suffix in SUFFIXES:
        candidate = (root / f"{name}{suffix}").resolve()
        if candidate.parent == root and candidate.is_file():  # a symlink out is refused
            return candidate
    known = strategy_names(strategies_dir)
    raise invalid(field, f"unknown strategy {name!r}; available: {', '.join(known) or 'none'}")


def parse_yaml(text: str, *, field: str, max_bytes: int) -> dict[str, Any]:
    """Client YAML -> a mapping, or a 422 naming `field`."""
    size = len(text.encode())
    if size > max_bytes:
        raise invalid(field, f"too large: {size} bytes (at most {max_bytes})")
    if not text.strip():
        raise invalid(field, "is empty")
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise invalid(field, "YAML anchors and aliases (&name / *name) are not allowed")
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise invalid(field, f"not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise invalid(field, "must be a YAML mapping of strategy sections")
    return document


def load_config(source: Path | dict[str, Any], *, field: str) -> Any:
    """load_strategy(source); a StrategyConfigError becomes a 422 with fields under `field`."""
    from libs.pipeline.config import StrategyConfigError, load_strategy

    try:
        return load_strategy(source)
    except StrategyConfigError as exc:
        raise invalid_many(
            FieldError(_join(field, path), reason) for path, reason in problems_of(exc)
        ) from None


def problems_of(exc: Exception) -> list[tuple[str, str]]:
    """(path, reason) per problem; path "" when a line names no field."""
    pairs: list[tuple[str, str]] = []
    lines = getattr(exc, "problems", None) or str(exc).splitlines()
    for line in filter(None, (str(ln).strip(" -") for ln in lines)):
        path, sep, reason = line.partition(": ")
        if sep and path.strip() and " " not in path.strip():
            pairs.append((path.strip(), reason))
        else:
            pairs.append(("", line))
    return pairs or [("", str(exc) or type(exc).__name__)]


def _join(prefix: str, path: str) -> str:
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"
