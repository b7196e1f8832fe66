"""Technical indicators through TA-Lib (its C library, vectorised), under KTRDR's names.

Columns are named by feature_id; a multi-output indicator gives its primary output the bare
feature_id and every other output `feature_id.output` (macd_12_26_9, macd_12_26_9.signal, ...).
Values are NaN during each indicator's own warm-up; rows with NaN are dropped later, never
filled, so no row is trained on a made-up value.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import talib

from libs.pipeline.config_models import IndicatorConfig

Arrays = dict[str, np.ndarray]
_Compute = Callable[[pd.DataFrame, dict], tuple[np.ndarray, ...]]


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    return np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64))


def _hlc(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _col(frame, "high"), _col(frame, "low"), _col(frame, "close")


_COMPUTE: dict[str, _Compute] = {
    "rsi": lambda f, p: (talib.RSI(_col(f, p["source"]), timeperiod=p["period"]),),
    "sma": lambda f, p: (talib.SMA(_col(f, p["source"]), timeperiod=p["period"]),),
    "ema": lambda f, p: (talib.EMA(_col(f, p["source"]), timeperiod=p["period"]),),
    "macd": lambda f, p: talib.MACD(
        _col(f, p["source"]),
        fastperiod=p["fast_period"],
        slowperiod=p["slow_period"],
        signalperiod=p["signal_period"],
    ),
    "bbands": lambda f, p: talib.BBANDS(
        _col(f, p["source"]),
        timeperiod=p["period"],
        nbdevup=p["multiplier"],
        nbdevdn=p["multiplier"],
        matype=talib.MA_Type.SMA,
    ),
    "atr": lambda f, p: (talib.ATR(*_hlc(f), timeperiod=p["period"]),),
    "stochastic": lambda f, p: talib.STOCH(
        *_hlc(f),
        fastk_period=p["k_period"],
        slowk_period=p["smooth_k"],
        slowk_matype=talib.MA_Type.SMA,
        slowd_period=p["d_period"],
        slowd_matype=talib.MA_Type.SMA,
    ),
    "williams_r": lambda f, p: (talib.WILLR(*_hlc(f), timeperiod=p["period"]),),
    "adx": lambda f, p: (
        talib.ADX(*_hlc(f), timeperiod=p["period"]),
        talib.PLUS_DI(*_hlc(f), timeperiod=p["period"]),
        talib.MINUS_DI(*_hlc(f), timeperiod=p["period"]),
    ),
    "roc": lambda f, p: (talib.ROC(_col(f, p["source"]), timeperiod=p["period"]),),
    "mfi": lambda f, p: (talib.MFI(*_hlc(f), _col(f, "volume"), timeperiod=p["period"]),),
    "obv": lambda f, p: (talib.OBV(_col(f, "close"), _col(f, "volume")),),
}


def compute_indicator(indicator: IndicatorConfig, frame: pd.DataFrame) -> Arrays:
    """Column name -> values (aligned with `frame`) for one indicator."""
    outputs = _COMPUTE[indicator.name](frame, indicator.params)
    names = indicator.spec.outputs or ("",)
    columns: Arrays = {}
    for position, (output, values) in enumerate(zip(names, outputs, strict=True)):
        key = indicator.feature_id if position == 0 else f"{indicator.feature_id}.{output}"
        columns[key] = np.asarray(values, dtype=np.float64)
    return columns


def compute_frame(indicators: list[IndicatorConfig], frame: pd.DataFrame) -> pd.DataFrame:
    """Every indicator on one timeframe's bars, as one frame on the bars' index."""
    columns: Arrays = {}
    for indicator in indicators:
        columns.update(compute_indicator(indicator, frame))
    out = pd.DataFrame(columns, index=frame.index)
    out.attrs.update(frame.attrs)
    return out
