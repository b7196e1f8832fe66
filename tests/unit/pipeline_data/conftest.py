"""Fixtures for the data half of the pipeline: small strategies and bar files in tmp dirs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from libs.pipeline.data.synth import synth_ohlcv, write_ohlcv_csv

REPO = Path(__file__).resolve().parents[3]

# A complete v2 strategy exercising every kind of fuzzy input (plain, multi-output, ratio).
BASE_STRATEGY: dict[str, Any] = {
    "name": "unit_strategy",
    "description": "test",
    "version": "2.0",
    "training_data": {
        "symbols": {"mode": "single_symbol", "list": ["SYN"]},
        "timeframes": {"mode": "single_timeframe", "list": ["1h"], "base_timeframe": "1h"},
        "history_required": 30,
    },
    "indicators": [
        {"name": "rsi", "feature_id": "rsi_14", "period": 14},
        {"name": "macd", "feature_id": "macd_12_26_9"},
        {"name": "sma", "feature_id": "sma_20", "period": 20},
    ],
    "fuzzy_sets": {
        "rsi_14": {
            "low": [0, 30, 50],
            "high": {"type": "trapezoidal", "parameters": [50, 70, 100, 100]},
        },
        "macd_12_26_9.histogram": {"neg": [-1, -0.2, 0], "pos": [0, 0.2, 1]},
        "sma_20": {
            "input_transform": {"type": "price_ratio", "reference": "close"},
            "below": [0.95, 0.99, 1.0],
            "above": [1.0, 1.01, 1.05],
        },
    },
    "model": {
        "architecture": {"hidden_layers": [8], "activation": "relu", "dropout": 0.0},
        "features": {"lookback_periods": 2, "scale_features": True, "scaling_method": "standard"},
        "training": {"epochs": 2, "batch_size": 16},
    },
    "training": {
        "labels": {"source": "zigzag", "zigzag_threshold": 0.01, "label_lookahead": 20},
        "data_split": {"train": 0.6, "validation": 0.2, "test": 0.2},
    },
}


@pytest.fixture
def strategy() -> Callable[..., dict[str, Any]]:
    """A fresh copy of BASE_STRATEGY with top-level sections replaced by keyword."""

    def make(**sections: Any) -> dict[str, Any]:
        doc = copy.deepcopy(BASE_STRATEGY)
        doc.update(copy.deepcopy(sections))
        return doc

    return make


@pytest.fixture
def bars_dir(tmp_path: Path) -> Callable[..., Path]:
    """Writes synthetic {SYMBOL}_{TF}.csv files into tmp_path and returns the folder."""

    def write(
        symbol: str = "SYN",
        timeframe: str = "1h",
        bars: int = 600,
        seed: int = 1,
        start: str = "2021-01-04",
        frame: pd.DataFrame | None = None,
    ) -> Path:
        frame = (
            frame
            if frame is not None
            else synth_ohlcv(bars, timeframe, seed=seed, start=start, volatility=0.004)
        )
        write_ohlcv_csv(frame, tmp_path / f"{symbol}_{timeframe}.csv")
        return tmp_path

    return write
