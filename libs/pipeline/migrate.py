"""v1/v2 -> v3: the v3 form of a loaded strategy, which trains exactly as the original does.

KTRDR's own migration drops the hyper-parameters it finds under model.training; this one moves
every resolved setting to its v3 place (training.* for the hyper-parameters, nn_inputs with
one normalization per input for model.features' scaling), so the migrated file gives the same
features, the same scaling statistics and the same weights for the same seed.
"""

from __future__ import annotations

import copy
from typing import Any

from libs.pipeline import dataset
from libs.pipeline.config.strategy import StrategyConfig, load_strategy

V3_VERSION = "3.0"


def _training_data(cfg: StrategyConfig) -> dict[str, Any]:
    if len(cfg.symbols) == 1:
        symbols: dict[str, Any] = {"mode": "single", "symbol": cfg.symbols[0]}
    else:
        symbols = {"mode": "multi_symbol", "list": list(cfg.symbols)}
    if len(cfg.timeframes) == 1:
        frames: dict[str, Any] = {"mode": "single", "timeframe": cfg.timeframes[0]}
    else:
        frames = {
            "mode": "multi_timeframe",
            "list": list(cfg.timeframes),
            "base_timeframe": cfg.base_timeframe,
        }
    out: dict[str, Any] = {"symbols": symbols, "timeframes": frames}
    out["history_required"] = cfg.history_required
    if cfg.session != "utc":
        out["session"] = cfg.session
    if cfg.start_date is not None or cfg.end_date is not None:
        out["date_range"] = {
            k: v for k, v in (("start", cfg.start_date), ("end", cfg.end_date)) if v is not None
        }
    return out


def _nn_inputs(cfg: StrategyConfig) -> list[dict[str, Any]]:
    if cfg.nn_inputs is not None:
        return [item.to_ktrdr() for item in cfg.nn_inputs]
    f = cfg.model.features
    method = {"standard": "zscore", "minmax": "minmax"}[f.scaling_method]
    method = method if f.scale_features else "none"
    return [
        {"fuzzy_set": key, "timeframes": "all", "normalization": method} for key in cfg.fuzzy_sets
    ]


def to_v3(cfg: StrategyConfig) -> dict[str, Any]:
    """The v3 document of `cfg`; `load_strategy(to_v3(cfg))` trains like `cfg`."""
    out: dict[str, Any] = {"name": cfg.name, "description": cfg.description}
    out["version"] = V3_VERSION
    out["training_data"] = _training_data(cfg)
    out["indicators"] = {i.feature_id: i.to_v3() for i in cfg.indicators}
    fuzzy_sets = {}
    for key, fuzzy in cfg.fuzzy_sets.items():
        body = fuzzy.to_ktrdr()
        body.pop("indicator", None)
        fuzzy_sets[key] = {"indicator": fuzzy.indicator or key, **body}
    out["fuzzy_sets"] = fuzzy_sets
    out["nn_inputs"] = _nn_inputs(cfg)
    if cfg.context_data:
        out["context_data"] = [entry.to_ktrdr() for entry in cfg.context_data]
    model = cfg.model.to_ktrdr()
    hyper = model.pop("training")
    model["features"] = {"lookback_periods": cfg.model.features.lookback_periods}
    out["model"] = model
    training = cfg.training.to_ktrdr()
    out["training"] = {**training, **{k: v for k, v in hyper.items() if v is not None}}
    out.update(copy.deepcopy(cfg.other_sections))
    return out


def migrate(cfg: StrategyConfig) -> dict[str, Any]:
    """The v3 document of a loaded strategy, checked to load back to the same settings
    (None values left out: they are the defaults)."""
    migrated: dict[str, Any] = _without_none(to_v3(cfg))
    if training_settings(load_strategy(migrated)) != training_settings(cfg):
        raise RuntimeError("the migrated strategy does not train like the original")
    return migrated


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def training_settings(cfg: StrategyConfig) -> dict[str, Any]:
    """What decides the trained weights (everything but the format's own bookkeeping)."""
    return {
        "symbols": cfg.symbols,
        "timeframes": cfg.timeframes,
        "base": cfg.base_timeframe,
        "history": cfg.history_bars,
        "session": cfg.session,
        "dates": (cfg.start_date, cfg.end_date),
        "indicators": cfg.indicators,
        "context": cfg.context_data,
        "inputs": {t: dataset.input_columns(cfg, t) for t in cfg.timeframes},
        "fuzzy": {
            k: (cfg.fuzzy_source(k)[1], f.input_transform, f.sets)
            for k, f in cfg.fuzzy_sets.items()
        },
        "lookback": cfg.model.features.lookback_periods,
        "model": (cfg.model.type, cfg.model.architecture, cfg.model.training),
        "training": cfg.training,
        "output_format": cfg.output_format,
    }
