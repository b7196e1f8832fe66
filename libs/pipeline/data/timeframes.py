"""The timeframes a strategy may name, their bar length and how pandas resamples to them."""

from __future__ import annotations

import pandas as pd

# name -> pandas offset alias. Weekly bars open on Monday (the FX/stock trading week).
_RULES: dict[str, str] = {
    "1m": "1min",
    "5m": "5min",
    "15m": "15min",
    "30m": "30min",
    "1h": "1h",
    "2h": "2h",
    "4h": "4h",
    "6h": "6h",
    "8h": "8h",
    "12h": "12h",
    "1d": "1D",
    "1w": "W-MON",
}

TIMEFRAMES: tuple[str, ...] = tuple(_RULES)

_LENGTHS: dict[str, pd.Timedelta] = {
    name: pd.Timedelta(days=7) if name == "1w" else pd.Timedelta(rule)
    for name, rule in _RULES.items()
}


def is_timeframe(name: str) -> bool:
    return name in _RULES


def length(timeframe: str) -> pd.Timedelta:
    """How long one bar lasts: a bar opened at t has closed (is known) at t + length."""
    return _LENGTHS[timeframe]


def resample_rule(timeframe: str) -> str:
    return _RULES[timeframe]


def divides(finer: str, coarser: str) -> bool:
    """Whether bars of `coarser` are made of whole bars of `finer` (so one can be resampled)."""
    fine, coarse = length(finer), length(coarser)
    return fine < coarse and coarse % fine == pd.Timedelta(0)
