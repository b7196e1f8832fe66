"""The indicators a strategy may use: KTRDR names, parameter names, defaults and outputs.

One table shared by config validation (unknown indicator/parameter -> error naming the valid
ones) and by indicators.py (which TA-Lib call computes each). Multi-output indicators list
their outputs with the primary one first: the primary is the column named by the bare
`feature_id`, the others are `feature_id.output`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SOURCES: tuple[str, ...] = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Param:
    kind: type  # int, float or str
    default: Any
    minimum: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class IndicatorSpec:
    name: str
    params: dict[str, Param] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()  # () = one output; else primary first

    @property
    def primary(self) -> str | None:
        return self.outputs[0] if self.outputs else None


def _period(default: int, minimum: int = 2) -> Param:
    return Param(int, default, minimum)


_SOURCE = Param(str, "close", choices=SOURCES)

SPECS: dict[str, IndicatorSpec] = {
    spec.name: spec
    for spec in (
        IndicatorSpec("rsi", {"period": _period(14), "source": _SOURCE}),
        IndicatorSpec("sma", {"period": _period(20), "source": _SOURCE}),
        IndicatorSpec("ema", {"period": _period(20), "source": _SOURCE}),
        IndicatorSpec(
            "macd",
            {
                "fast_period": _period(12),
                "slow_period": _period(26),
                "signal_period": _period(9, minimum=1),
                "source": _SOURCE,
            },
            outputs=("line", "signal", "histogram"),
        ),
        IndicatorSpec(
            "bbands",
            {"period": _period(20), "multiplier": Param(float, 2.0, 0.0), "source": _SOURCE},
            outputs=("upper", "middle", "lower"),
        ),
        IndicatorSpec("atr", {"period": _period(14, minimum=1)}),
        IndicatorSpec(
            "stochastic",
            {
                "k_period": _period(14, minimum=1),
                "d_period": _period(3, minimum=1),
                "smooth_k": _period(3, minimum=1),
            },
            outputs=("k", "d"),
        ),
        IndicatorSpec("williams_r", {"period": _period(14)}),
        IndicatorSpec("adx", {"period": _period(14)}, outputs=("adx", "plus_di", "minus_di")),
        IndicatorSpec("roc", {"period": _period(10, minimum=1), "source": _SOURCE}),
        IndicatorSpec("mfi", {"period": _period(14)}),
        IndicatorSpec("obv"),
    )
}

ALIASES: dict[str, str] = {"bollinger_bands": "bbands"}

KNOWN_NAMES: tuple[str, ...] = tuple(sorted([*SPECS, *ALIASES]))


def canonical_name(name: str) -> str | None:
    """The SPECS key for a KTRDR indicator name (case-insensitive), None when unknown."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in SPECS else None


def _coerce(name: str, param: Param, value: Any) -> tuple[Any, str | None]:
    """The value converted to the parameter's kind, or an error message."""
    if param.kind is str:
        if not isinstance(value, str) or value not in (param.choices or (value,)):
            return None, f"{name}: {value!r} is not valid; valid: {', '.join(param.choices or ())}"
        return value, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"{name}: must be a number, got {value!r}"
    if param.kind is int:
        if float(value) != int(value):
            return None, f"{name}: must be a whole number, got {value!r}"
        value = int(value)
    else:
        value = float(value)
    if param.minimum is not None and (
        value < param.minimum or (param.kind is float and value <= param.minimum)
    ):
        bound = f">= {param.minimum:g}" if param.kind is int else f"> {param.minimum:g}"
        return None, f"{name}: must be {bound}, got {value!r}"
    return value, None


def resolve_params(
    spec: IndicatorSpec, given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """All parameters of `spec` (defaults filled in) and the problems with `given`."""
    problems: list[str] = []
    valid = ", ".join(spec.params) or "(none)"
    unknown = [key for key in given if key not in spec.params]
    for key in unknown:
        problems.append(f"{key}: unknown parameter for {spec.name}; valid parameters: {valid}")
    resolved: dict[str, Any] = {}
    for key, param in spec.params.items():
        value, problem = _coerce(key, param, given.get(key, param.default))
        if problem:
            problems.append(problem)
        resolved[key] = value
    if spec.name == "macd" and not problems and resolved["fast_period"] >= resolved["slow_period"]:
        problems.append("fast_period must be smaller than slow_period")
    return resolved, problems
