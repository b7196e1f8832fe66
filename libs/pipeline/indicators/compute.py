"""Technical indicators through TA-Lib (its C library, vectorised), under KTRDR's names.

Columns are named by feature_id; a multi-output indicator gives its primary output the bare
feature_id and every other output `feature_id.output` (macd_12_26_9, macd_12_26_9.signal, ...).
Values are NaN during each indicator's own warm-up; rows with NaN are dropped later, never
filled, so no row is trained on a made-up value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib

from libs.pipeline.config.sections import IndicatorConfig

Columns = dict[str, np.ndarray]


def compute_indicator(indicator: IndicatorConfig, frame: pd.DataFrame) -> Columns:
    """Column name -> values (aligned with `frame`) for one indicator."""
    spec = indicator.spec
    outputs = spec.compute(talib, frame, indicator.params)
    names = spec.outputs or ("",)
    columns: Columns = {}
    for position, (output, values) in enumerate(zip(names, outputs, strict=True)):
        key = indicator.feature_id if position == 0 else f"{indicator.feature_id}.{output}"
        columns[key] = np.asarray(values, dtype=np.float64)
    return columns


def compute_frame(indicators: list[IndicatorConfig], frame: pd.DataFrame) -> pd.DataFrame:
    """Every indicator on one timeframe's bars, as one frame on the bars' index."""
    columns: Columns = {}
    for indicator in indicators:
        columns.update(compute_indicator(indicator, frame))
    out = pd.DataFrame(columns, index=frame.index)
    out.attrs.update(frame.attrs)
    return out
