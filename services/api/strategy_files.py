"""Strategies by name or as YAML text: safe lookup, safe parsing, and field errors.

- A strategy name is a file stem in `strategies_dir`; it can never escape that folder (no
  separators, no `..`, the resolved path must stay inside).
- YAML text from a client is parsed HERE (safe_load; limited in size and in nesting, since the
  composer recurses once per level; no anchors/aliases: an alias bomb is tiny as text but
  expands exponentially once the snapshot is serialised) and handed to the pipeline as a
  mapping -- never as a string, which `load_strategy` would read as a file path if it looked
  like one.
- The pipeline's `StrategyConfigError` carries each problem with its location in the strategy
  (`ConfigIssue.loc`); each becomes a field error under the request field that carried the
  strategy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from libs.pipeline import names
from libs.pipeline.config.errors import ConfigIssue, StrategyConfigError, format_path
from services.api.errors import FieldError, Problem, invalid, invalid_many
from services.api.text import REASON, unstorable_at

SUFFIXES = (".yaml", ".yml")
# A strategy is a handful of levels deep; the parser recurses once per level.
MAX_YAML_DEPTH = 32


def strategy_names(strategies_dir: Path) -> list[str]:
    if not strategies_dir.is_dir():
        return []
    return sorted(
        p.stem
        for p in strategies_dir.iterdir()
        if p.suffix in SUFFIXES and p.is_file() and names.STRATEGY.matches(p.stem)
    )


def strategy_path(strategies_dir: Path, name: str, *, field: str = "strategy") -> Path:
    """The file for `name`; a 422 naming `field` for a malformed name, a 404 for an unknown one."""
    if not names.STRATEGY.matches(name):
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
    reason = f"unknown strategy {name!r}; available: {', '.join(known) or 'none'}"
    raise Problem(
        404, reason, errors=[FieldError(field, reason)], kind="not-found", title="Not found"
    )


def parse_yaml(text: str, *, field: str, max_bytes: int) -> dict[str, Any]:
    """Client YAML -> a mapping, or a 422 naming `field`."""
    size = len(text.encode())
    if size > max_bytes:
        raise invalid(field, f"too large: {size} bytes (at most {max_bytes})")
    if not text.strip():
        raise invalid(field, "is empty")
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise invalid(field, "YAML anchors and aliases (&name / *name) are not allowed")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise invalid(field, f"nested deeper than {MAX_YAML_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise invalid(field, f"not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise invalid(field, "must be a YAML mapping of strategy sections")
    where = unstorable_at(document, field)
    if where is not None:
        raise invalid(where, REASON)
    return document


def load_config(source: Path | dict[str, Any], *, field: str) -> Any:
    """load_strategy(source); a StrategyConfigError becomes a 422 with fields under `field`."""
    from libs.pipeline.config.strategy import load_strategy

    try:
        return load_strategy(source)
    except StrategyConfigError as exc:
        issues = [issue_at(field, issue) for issue in exc.issues]
        if isinstance(source, Path):  # "cannot read strategy file /srv/...": no server paths
            folder = str(source.parent) + "/"
            issues = [FieldError(i.field, i.reason.replace(folder, "")) for i in issues]
        raise invalid_many(issues) from None


def issue_at(field: str, issue: ConfigIssue) -> FieldError:
    """The field error for a problem located in the strategy that `field` carried
    (`strategy` + ("indicators", 0, "period") -> `strategy.indicators[0].period`)."""
    return FieldError(format_path(issue.loc, prefix=field), issue.message)
