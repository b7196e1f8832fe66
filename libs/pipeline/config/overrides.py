"""Overrides (CLI flags, API requests) applied to a strategy snapshot before it is re-validated.

Overrides edit the KTRDR mapping, not the config object, so the result goes through exactly
the validation a file does and a bad value is reported with its field path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libs.pipeline.config.errors import ConfigIssue, StrategyConfigError

# Short override names -> where they live in the KTRDR layout.
OVERRIDE_PATHS: dict[str, tuple[str, ...]] = {
    "epochs": ("model", "training", "epochs"),
    "batch_size": ("model", "training", "batch_size"),
    "learning_rate": ("model", "training", "learning_rate"),
    "optimizer": ("model", "training", "optimizer"),
    "weight_decay": ("model", "training", "weight_decay"),
    "gradient_clip": ("model", "training", "gradient_clip"),
    "class_weights": ("model", "training", "class_weights"),
    "early_stopping": ("model", "training", "early_stopping"),
    "lr_scheduler": ("model", "training", "lr_scheduler"),
    "hidden_layers": ("model", "architecture", "hidden_layers"),
    "activation": ("model", "architecture", "activation"),
    "dropout": ("model", "architecture", "dropout"),
    "lookback_periods": ("model", "features", "lookback_periods"),
    "scale_features": ("model", "features", "scale_features"),
    "scaling_method": ("model", "features", "scaling_method"),
    "zigzag_threshold": ("training", "labels", "zigzag_threshold"),
    "label_lookahead": ("training", "labels", "label_lookahead"),
    "data_split": ("training", "data_split"),
    "evaluation": ("training", "evaluation"),
    "history_required": ("training_data", "history_required"),
}


def override_path(key: str) -> tuple[str, ...] | None:
    """Where an override key (a short name or a dotted path) points in the strategy; None for
    a key that is neither."""
    if key in OVERRIDE_PATHS:
        return OVERRIDE_PATHS[key]
    if "." in key and all(key.split(".")):
        return tuple(key.split("."))
    return None


def _unknown(key: str) -> ConfigIssue:
    valid = ", ".join(sorted(OVERRIDE_PATHS))
    message = (
        f"unknown override; valid overrides: {valid}"
        " (or a dotted path into the strategy, e.g. model.training.epochs)"
    )
    return ConfigIssue(("overrides", key), message, "unknown_override")


def _set(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = document
    for depth, part in enumerate(path[:-1]):
        child = node.get(part) if isinstance(node, dict) else None
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(path[: depth + 1])
            issue = ConfigIssue(("overrides", *path), f"{where} is not a section")
            raise StrategyConfigError([issue])
        node = child
    node[path[-1]] = value


def overridden_snapshot(
    snapshot: dict[str, Any],
    symbols: list[str] | None,
    timeframes: list[str] | None,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """A copy-edited snapshot (v2 layout, as StrategyConfig.snapshot() writes it)."""
    document = snapshot
    data = document["training_data"]
    if symbols is not None:
        symbols = list(symbols)
        mode = "multi_symbol" if len(symbols) > 1 else "single_symbol"
        data["symbols"] = {"mode": mode, "list": symbols}
    if timeframes is not None:
        timeframes = list(timeframes)
        base = data["timeframes"]["base_timeframe"]
        data["timeframes"] = {
            "mode": "multi_timeframe" if len(timeframes) > 1 else "single_timeframe",
            "list": timeframes,
            # Keep the base when it is still listed; otherwise the first listed becomes base.
            "base_timeframe": base
            if base in timeframes
            else (timeframes[0] if timeframes else None),
        }
    issues: list[ConfigIssue] = []
    paths = []
    for key in overrides:
        path = override_path(key)
        if path is None:
            issues.append(_unknown(key))
        else:
            paths.append((path, overrides[key]))
    if issues:
        raise StrategyConfigError(issues)
    for path, value in paths:
        _set(document, path, value)
        if path == ("model", "features", "scale_features") and value is False:
            # scaling_method is an error when unused; drop the one the snapshot carried.
            document["model"]["features"].pop("scaling_method", None)
    return document
