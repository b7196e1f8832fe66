"""Upper bounds on the hyper-parameters that decide how much work a training is, and the strict
types of override values: the one place both are written.

A strategy that validates (sections.py, training.py) may still ask for absurd work: a layer of
a million units (a trainer would allocate gigabytes), a billion-row batch, 10^12 epochs. The
service refuses those before anything is queued. The bounds are settings, so an admin with
bigger machines raises them (env KTRDR_MAX_LAYER_WIDTH, ...); docs/operations.md lists
the defaults.

Overrides come from JSON (API) or flags (CLI) and are applied to the strategy mapping before it
is validated again, where pydantic's lax mode would read `"10"` or `true` as an integer. Their
types are checked strictly here first: an integer is an integer, not a string or a boolean.
The limits read the resolved strategy through its snapshot (the v2 mapping), at the paths the
override names point at (overrides.OVERRIDE_PATHS), so the two never disagree on where a
setting lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from libs.pipeline.config.errors import ConfigIssue
from libs.pipeline.config.overrides import OVERRIDE_PATHS, override_path
from libs.settings import KtrdrSettings


class HyperParameterLimits(KtrdrSettings):
    """KTRDR_MAX_LAYER_WIDTH, KTRDR_MAX_LAYERS, KTRDR_MAX_BATCH_SIZE, KTRDR_MAX_EPOCHS,
    KTRDR_MAX_LOOKBACK_PERIODS."""

    max_layer_width: int = Field(default=4096, ge=1)  # units in one hidden layer
    max_layers: int = Field(default=16, ge=1)  # hidden layers
    max_batch_size: int = Field(default=65_536, ge=1)
    max_epochs: int = Field(default=10_000, ge=1)
    max_lookback_periods: int = Field(default=500, ge=0)


def _at(snapshot: Mapping[str, Any], name: str) -> Any:
    node: Any = snapshot
    for part in OVERRIDE_PATHS[name]:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def limit_issues(snapshot: Mapping[str, Any], limits: HyperParameterLimits) -> list[ConfigIssue]:
    """What in the resolved strategy (its snapshot) goes past `limits`; located in the
    strategy, like every ConfigIssue."""
    issues: list[ConfigIssue] = []

    def over(name: str, value: Any, limit: int, what: str, *index: int) -> None:
        if isinstance(value, int) and value > limit:
            loc: tuple[str | int, ...] = (*OVERRIDE_PATHS[name], *index)
            issues.append(ConfigIssue(loc, f"{what} {value} is over the limit of {limit}"))

    layers = _at(snapshot, "hidden_layers")
    if isinstance(layers, list):
        if len(layers) > limits.max_layers:
            loc = OVERRIDE_PATHS["hidden_layers"]
            issues.append(
                ConfigIssue(loc, f"{len(layers)} layers is over the limit of {limits.max_layers}")
            )
        for i, width in enumerate(layers):
            over("hidden_layers", width, limits.max_layer_width, "a layer of", i)
    over("batch_size", _at(snapshot, "batch_size"), limits.max_batch_size, "batch_size")
    over("epochs", _at(snapshot, "epochs"), limits.max_epochs, "epochs")
    lookback = _at(snapshot, "lookback_periods")
    over("lookback_periods", lookback, limits.max_lookback_periods, "lookback_periods")
    return issues


# The JSON types each override accepts (bool is never an int here, nor a str a number).
_INT = "an integer"
_NUMBER = "a number"
_BOOL = "true or false"
_INT_LIST = "a list of integers"
STRICT_TYPES: dict[str, str] = {
    "epochs": _INT,
    "batch_size": _INT,
    "lookback_periods": _INT,
    "label_lookahead": _INT,
    "history_required": _INT,
    "learning_rate": _NUMBER,
    "weight_decay": _NUMBER,
    "dropout": _NUMBER,
    "zigzag_threshold": _NUMBER,
    "scale_features": _BOOL,
    "hidden_layers": _INT_LIST,
}


def _is(value: Any, kind: str) -> bool:
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == _BOOL:
        return isinstance(value, bool)
    return isinstance(value, list) and all(_is(item, _INT) for item in value)


def override_type_issues(overrides: Mapping[str, Any]) -> list[ConfigIssue]:
    """Overrides whose value is not of their setting's JSON type (`{"epochs": "10"}`), located
    at ("overrides", key). A dotted key reaching a strictly typed setting is checked too; a
    `gradient_clip` or `label_lookahead` of null keeps its meaning (off / the default)."""
    by_path = {path: name for name, path in OVERRIDE_PATHS.items()}
    issues = []
    for key, value in overrides.items():
        path = override_path(key)
        name = by_path.get(path) if path is not None else None
        kind = STRICT_TYPES.get(name) if name is not None else None
        if kind is None or value is None or _is(value, kind):
            continue
        issues.append(
            ConfigIssue(("overrides", key), f"must be {kind}, got {type(value).__name__}")
        )
    return issues
