"""The indicators a strategy may use: one table entry per indicator holds everything about it --
its KTRDR name, parameters (names, defaults, limits), outputs, and how TA-Lib computes it.

Config validation reads the table (unknown indicator/parameter -> an error naming the valid
ones); `compute.py` runs the entry's `compute` with the TA-Lib module, which is imported there
only, so validating a strategy never needs TA-Lib. Multi-output indicators list their outputs
with the primary one first: the primary is the column named by the bare `feature_id`, the
others are `feature_id.output`.

Adding an indicator is one `IndicatorSpec(...)` entry in SPECS (plus a test of its values);
tests/unit/pipeline_data/test_indicator_catalog.py checks every entry's compute against its
declared parameters and outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from libs.pipeline.config.errors import ConfigIssue

SOURCES: tuple[str, ...] = ("open", "high", "low", "close", "volume")

Arrays = tuple[np.ndarray, ...]
# (the talib module, the bars, the resolved parameters) -> one array per output, in order.
Compute = Callable[[Any, pd.DataFrame, Mapping[str, Any]], Arrays]


@dataclass(frozen=True)
class Param:
    kind: type  # int, float or str
    default: Any
    minimum: float | None = None
    choices: tuple[str, ...] | None = None


# An indicator has converged when the bars before its window weigh at most this much in its
# value: exponential smoothing never forgets its seed, so "converged" needs a tolerance.
CONVERGENCE = 1e-3


def smoothing_bars(alpha: float) -> int:
    """Bars after which an exponential smoothing's seed weighs <= CONVERGENCE."""
    return math.ceil(math.log(CONVERGENCE) / math.log(1.0 - alpha))


@dataclass(frozen=True)
class IndicatorSpec:
    name: str
    params: dict[str, Param]
    compute: Compute = field(repr=False, compare=False)
    # Bars before the value no longer depends on where the data begins (to CONVERGENCE):
    # its window for a finite one, window + smoothing for a recursive one.
    warmup: Callable[[Mapping[str, Any]], int] = field(repr=False, compare=False)
    outputs: tuple[str, ...] = ()  # () = one output; else primary first
    # Other names a parameter is written under in KTRDR files (MACD's fast/slow/signal).
    aliases: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def primary(self) -> str | None:
        return self.outputs[0] if self.outputs else None

    @property
    def output_count(self) -> int:
        return len(self.outputs) or 1


def _period(default: int, minimum: int = 2) -> Param:
    return Param(int, default, minimum)


_SOURCE = Param(str, "close", choices=SOURCES)


def col(frame: pd.DataFrame, name: str) -> np.ndarray:
    """One bar column as the contiguous float64 array TA-Lib takes."""
    return np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64))


def hlc(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return col(frame, "high"), col(frame, "low"), col(frame, "close")


def _bb_width(ta: Any, f: pd.DataFrame, p: Mapping[str, Any]) -> np.ndarray:
    """(upper - lower) / middle of the Bollinger Bands: their width relative to the price."""
    upper, middle, lower = ta.BBANDS(
        col(f, p["source"]),
        timeperiod=p["period"],
        nbdevup=p["multiplier"],
        nbdevdn=p["multiplier"],
        matype=ta.MA_Type.SMA,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((upper - lower) / middle, dtype=np.float64)


def _squeeze(ta: Any, f: pd.DataFrame, p: Mapping[str, Any]) -> np.ndarray:
    """How far the Bollinger Bands sit inside the Keltner Channels: 1 - BB half-width / KC
    half-width, clipped to [0, 1] (0: no squeeze, the bands reach the channels or beyond;
    1: full squeeze, the bands have collapsed onto their middle). BB half-width =
    bb_multiplier x the close's standard deviation over bb_period; KC half-width =
    kc_multiplier x ATR(kc_period)."""
    close = col(f, "close")
    std = ta.STDDEV(close, timeperiod=p["bb_period"], nbdev=1.0)
    atr = ta.ATR(*hlc(f), timeperiod=p["kc_period"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (p["bb_multiplier"] * std) / (p["kc_multiplier"] * atr)
    out = np.clip(1.0 - ratio, 0.0, 1.0)
    return np.where(np.isnan(ratio), np.nan, out)


SPECS: dict[str, IndicatorSpec] = {
    spec.name: spec
    for spec in (
        IndicatorSpec(
            "rsi",
            {"period": _period(14), "source": _SOURCE},
            lambda ta, f, p: (ta.RSI(col(f, p["source"]), timeperiod=p["period"]),),
            warmup=lambda p: p["period"] + smoothing_bars(1 / p["period"]),
        ),
        IndicatorSpec(
            "sma",
            {"period": _period(20), "source": _SOURCE},
            lambda ta, f, p: (ta.SMA(col(f, p["source"]), timeperiod=p["period"]),),
            warmup=lambda p: p["period"] - 1,
        ),
        IndicatorSpec(
            "ema",
            {"period": _period(20), "source": _SOURCE},
            lambda ta, f, p: (ta.EMA(col(f, p["source"]), timeperiod=p["period"]),),
            warmup=lambda p: p["period"] - 1 + smoothing_bars(2 / (p["period"] + 1)),
        ),
        IndicatorSpec(
            "macd",
            {
                "fast_period": _period(12),
                "slow_period": _period(26),
                "signal_period": _period(9, minimum=1),
                "source": _SOURCE,
            },
            lambda ta, f, p: tuple(
                ta.MACD(
                    col(f, p["source"]),
                    fastperiod=p["fast_period"],
                    slowperiod=p["slow_period"],
                    signalperiod=p["signal_period"],
                )
            ),
            warmup=lambda p: (
                p["slow_period"]
                - 1
                + smoothing_bars(2 / (p["slow_period"] + 1))
                + p["signal_period"]
                - 1
                + smoothing_bars(2 / (p["signal_period"] + 1))
            ),
            outputs=("line", "signal", "histogram"),
            aliases={"fast": "fast_period", "slow": "slow_period", "signal": "signal_period"},
        ),
        IndicatorSpec(
            "bbands",
            {"period": _period(20), "multiplier": Param(float, 2.0, 0.0), "source": _SOURCE},
            lambda ta, f, p: tuple(
                ta.BBANDS(
                    col(f, p["source"]),
                    timeperiod=p["period"],
                    nbdevup=p["multiplier"],
                    nbdevdn=p["multiplier"],
                    matype=ta.MA_Type.SMA,
                )
            ),
            warmup=lambda p: p["period"] - 1,
            outputs=("upper", "middle", "lower"),
        ),
        IndicatorSpec(
            "atr",
            {"period": _period(14, minimum=1)},
            lambda ta, f, p: (ta.ATR(*hlc(f), timeperiod=p["period"]),),
            warmup=lambda p: p["period"] + smoothing_bars(1 / max(p["period"], 2)),
        ),
        IndicatorSpec(
            "stochastic",
            {
                "k_period": _period(14, minimum=1),
                "d_period": _period(3, minimum=1),
                "smooth_k": _period(3, minimum=1),
            },
            lambda ta, f, p: tuple(
                ta.STOCH(
                    *hlc(f),
                    fastk_period=p["k_period"],
                    slowk_period=p["smooth_k"],
                    slowk_matype=ta.MA_Type.SMA,
                    slowd_period=p["d_period"],
                    slowd_matype=ta.MA_Type.SMA,
                )
            ),
            warmup=lambda p: p["k_period"] + p["smooth_k"] + p["d_period"] - 3,
            outputs=("k", "d"),
        ),
        IndicatorSpec(
            "williams_r",
            {"period": _period(14)},
            lambda ta, f, p: (ta.WILLR(*hlc(f), timeperiod=p["period"]),),
            warmup=lambda p: p["period"] - 1,
        ),
        IndicatorSpec(
            "adx",
            {"period": _period(14)},
            lambda ta, f, p: (
                ta.ADX(*hlc(f), timeperiod=p["period"]),
                ta.PLUS_DI(*hlc(f), timeperiod=p["period"]),
                ta.MINUS_DI(*hlc(f), timeperiod=p["period"]),
            ),
            warmup=lambda p: 2 * p["period"] - 1 + 2 * smoothing_bars(1 / p["period"]),
            outputs=("adx", "plus_di", "minus_di"),
        ),
        IndicatorSpec(
            "roc",
            {"period": _period(10, minimum=1), "source": _SOURCE},
            lambda ta, f, p: (ta.ROC(col(f, p["source"]), timeperiod=p["period"]),),
            warmup=lambda p: p["period"],
        ),
        IndicatorSpec(
            "mfi",
            {"period": _period(14)},
            lambda ta, f, p: (ta.MFI(*hlc(f), col(f, "volume"), timeperiod=p["period"]),),
            warmup=lambda p: p["period"],
        ),
        IndicatorSpec(
            "bollingerbandwidth",
            {"period": _period(20), "multiplier": Param(float, 2.0, 0.0), "source": _SOURCE},
            lambda ta, f, p: (_bb_width(ta, f, p),),
            warmup=lambda p: p["period"] - 1,
        ),
        IndicatorSpec(
            "squeezeintensity",
            {
                "bb_period": _period(20),
                "bb_multiplier": Param(float, 2.0, 0.0),
                "kc_period": _period(20),
                "kc_multiplier": Param(float, 1.5, 0.0),
            },
            lambda ta, f, p: (_squeeze(ta, f, p),),
            warmup=lambda p: max(
                p["bb_period"] - 1, p["kc_period"] + smoothing_bars(1 / max(p["kc_period"], 2))
            ),
        ),
        # OBV is a running total: its level depends on the first bar forever; no warm-up
        # makes it start-independent (use its changes through another indicator instead).
        IndicatorSpec(
            "obv",
            {},
            lambda ta, f, p: (ta.OBV(col(f, "close"), col(f, "volume")),),
            warmup=lambda p: 0,
        ),
    )
}

ALIASES: dict[str, str] = {
    "bollinger_bands": "bbands",
    "bollinger_band_width": "bollingerbandwidth",
    "bbwidth": "bollingerbandwidth",
    "williamsr": "williams_r",
    "squeeze_intensity": "squeezeintensity",
}

KNOWN_NAMES: tuple[str, ...] = tuple(sorted([*SPECS, *ALIASES]))


def canonical_name(name: str) -> str | None:
    """The SPECS key for a KTRDR indicator name (case-insensitive), None when unknown."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in SPECS else None


def _coerce(param: Param, value: Any) -> tuple[Any, str | None]:
    """The value converted to the parameter's kind, or what is wrong with it."""
    if param.kind is str:
        if not isinstance(value, str) or value not in (param.choices or (value,)):
            return None, f"{value!r} is not valid; valid: {', '.join(param.choices or ())}"
        return value, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"must be a number, got {value!r}"
    number: int | float
    if param.kind is int:
        if float(value) != int(value):
            return None, f"must be a whole number, got {value!r}"
        number = int(value)
    else:
        number = float(value)
    if param.minimum is not None and (
        number < param.minimum or (param.kind is float and number <= param.minimum)
    ):
        bound = f">= {param.minimum:g}" if param.kind is int else f"> {param.minimum:g}"
        return None, f"must be {bound}, got {number!r}"
    return number, None


def resolve_params(
    spec: IndicatorSpec, given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """All parameters of `spec` (defaults filled in) and the problems with `given`, each
    located at its parameter (relative to the indicator)."""
    issues: list[ConfigIssue] = []
    valid = ", ".join(spec.params) or "(none)"
    given = dict(given)
    for alias, name in spec.aliases.items():
        if alias not in given:
            continue
        if name in given:
            message = f"{alias} and {name} name the same parameter of {spec.name}; give one"
            issues.append(ConfigIssue((alias,), message))
        given[name] = given.pop(alias)
    for key in given:
        if key not in spec.params:
            message = f"unknown parameter for {spec.name}; valid parameters: {valid}"
            issues.append(ConfigIssue((str(key),), message, "unknown_field"))
    resolved: dict[str, Any] = {}
    for key, param in spec.params.items():
        value, problem = _coerce(param, given.get(key, param.default))
        if problem:
            issues.append(ConfigIssue((key,), problem))
        resolved[key] = value
    if spec.name == "macd" and not issues and resolved["fast_period"] >= resolved["slow_period"]:
        issues.append(ConfigIssue((), "fast_period must be smaller than slow_period"))
    return resolved, issues
