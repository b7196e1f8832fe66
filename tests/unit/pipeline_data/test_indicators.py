"""TA-Lib indicators under KTRDR names, spot-checked against independent formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from libs.pipeline.config.sections import IndicatorConfig
from libs.pipeline.data.synth import synth_ohlcv
from libs.pipeline.indicators.compute import compute_frame, compute_indicator


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return synth_ohlcv(300, "1h", seed=7, volatility=0.01)


def ind(**raw) -> IndicatorConfig:
    return IndicatorConfig.model_validate(raw)


def test_sma_is_the_rolling_mean(bars):
    (values,) = compute_indicator(ind(name="sma", period=20), bars).values()
    expected = bars["close"].rolling(20).mean().to_numpy()
    np.testing.assert_allclose(values, expected, rtol=1e-10, equal_nan=True)
    assert np.isnan(values[:19]).all() and not np.isnan(values[19:]).any()


def test_sma_of_another_source(bars):
    (values,) = compute_indicator(ind(name="sma", period=5, source="high"), bars).values()
    np.testing.assert_allclose(values, bars["high"].rolling(5).mean(), rtol=1e-10, equal_nan=True)


def test_rsi_matches_wilders_definition(bars):
    period = 14
    (values,) = compute_indicator(ind(name="rsi", period=period), bars).values()
    change = np.diff(bars["close"].to_numpy())
    gain, loss = np.clip(change, 0, None), np.clip(-change, 0, None)
    avg_gain, avg_loss = gain[:period].mean(), loss[:period].mean()
    expected = [100 - 100 / (1 + avg_gain / avg_loss)]
    for g, lo in zip(gain[period:], loss[period:], strict=True):
        avg_gain = (avg_gain * (period - 1) + g) / period
        avg_loss = (avg_loss * (period - 1) + lo) / period
        expected.append(100 - 100 / (1 + avg_gain / avg_loss))
    np.testing.assert_allclose(values[period:], expected, rtol=1e-8)


def test_bbands_outputs_and_formula(bars):
    columns = compute_indicator(
        ind(name="bollinger_bands", feature_id="bb", period=10, multiplier=1.5), bars
    )
    assert list(columns) == ["bb", "bb.middle", "bb.lower"]  # upper is the primary output
    mean = bars["close"].rolling(10).mean()
    std = bars["close"].rolling(10).std(ddof=0)
    np.testing.assert_allclose(columns["bb.middle"], mean, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(columns["bb"], mean + 1.5 * std, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(columns["bb.lower"], mean - 1.5 * std, rtol=1e-9, equal_nan=True)


def test_williams_r_and_roc_formulas(bars):
    (wr,) = compute_indicator(ind(name="williams_r", period=14), bars).values()
    hh, ll = bars["high"].rolling(14).max(), bars["low"].rolling(14).min()
    np.testing.assert_allclose(
        wr, -100 * (hh - bars["close"]) / (hh - ll), rtol=1e-9, equal_nan=True
    )
    (roc,) = compute_indicator(ind(name="roc", period=10), bars).values()
    close = bars["close"]
    np.testing.assert_allclose(roc, (close / close.shift(10) - 1) * 100, rtol=1e-9, equal_nan=True)


def test_obv_accumulates_signed_volume(bars):
    (obv,) = compute_indicator(ind(name="obv"), bars).values()
    direction = np.sign(np.diff(bars["close"].to_numpy()))
    steps = np.concatenate([[0.0], direction * bars["volume"].to_numpy()[1:]])
    np.testing.assert_allclose(obv - obv[0], np.cumsum(steps), rtol=1e-9)


def test_multi_output_columns_are_named_feature_id_dot_output(bars):
    indicators = [
        ind(name="macd", feature_id="macd_12_26_9"),
        ind(name="stochastic", feature_id="st"),
        ind(name="adx", feature_id="adx_14"),
        ind(name="atr", feature_id="atr_14"),
        ind(name="mfi", feature_id="mfi_14"),
        ind(name="ema", feature_id="ema_9", period=9),
    ]
    frame = compute_frame(indicators, bars)
    assert list(frame.columns) == [
        "macd_12_26_9",
        "macd_12_26_9.signal",
        "macd_12_26_9.histogram",
        "st",
        "st.d",
        "adx_14",
        "adx_14.plus_di",
        "adx_14.minus_di",
        "atr_14",
        "mfi_14",
        "ema_9",
    ]
    assert frame.index.equals(bars.index)
    tail = frame.iloc[100:]
    np.testing.assert_allclose(
        tail["macd_12_26_9.histogram"],
        tail["macd_12_26_9"] - tail["macd_12_26_9.signal"],
        atol=1e-12,
    )
    assert tail.notna().all().all()
    assert ((tail["st"] >= 0) & (tail["st"] <= 100)).all()
