"""The v3 label sources against series computed by hand: forward returns and their
thresholds, the triple barrier (with the CUSUM filter and average uniqueness), the regime
labeler; and, for each, that appending bars never changes a label that was not UNKNOWN."""

from __future__ import annotations

import numpy as np
import pytest

from libs.pipeline.labels import (
    BUY,
    HOLD,
    NOT_EVENT,
    RANGE,
    SELL,
    TREND_DOWN,
    TREND_UP,
    UNKNOWN,
    VOLATILE,
    atr_zigzag,
    average_uniqueness,
    cusum_events,
    forward_returns,
    regime_labels,
    threshold_labels,
    triple_barrier_labels,
)

U = UNKNOWN


def test_forward_returns_and_their_three_classes():
    close = np.array([100.0, 101.0, 99.0, 102.0])
    returns = forward_returns(close, 2)
    np.testing.assert_allclose(returns[:2], [99 / 100 - 1, 102 / 101 - 1])
    assert np.isnan(returns[2:]).all()
    labels = threshold_labels(returns, 0.005, -0.005)
    assert labels.tolist() == [SELL, BUY, U, U]
    # Exactly on a threshold is HOLD.
    assert threshold_labels(np.array([0.005, -0.005, 0.0]), 0.005, -0.005).tolist() == [HOLD] * 3


CLOSE = np.array([100.0, 101.0, 103.0, 98.5, 100.0, 100.0, 100.0])


def test_triple_barrier_by_hand():
    # vol 1 %: upper +2 % (pt 2), lower -1 % (sl 1), vertical 3 bars.
    barriers = triple_barrier_labels(CLOSE, np.full(7, 0.01), 2.0, 1.0, 3)
    # t0: 103 >= 102 before 98.5 <= 99 -> BUY at bar 2; t1: upper 103.02 never, 98.5 <= 99.99
    # at bar 3 -> SELL; t2: 98.5 <= 101.97 at bar 3 -> SELL; t3: no barrier in bars 4..6 ->
    # HOLD at the vertical (bar 6); t4..t6: the series ends before the vertical -> UNKNOWN.
    assert barriers.labels.tolist() == [BUY, SELL, SELL, HOLD, U, U, U]
    assert barriers.ends.tolist() == [2, 3, 3, 6, -1, -1, -1]


def test_triple_barrier_parameters_each_change_the_labels():
    vol = np.full(7, 0.01)
    base = triple_barrier_labels(CLOSE, vol, 2.0, 1.0, 3).labels
    assert triple_barrier_labels(CLOSE, vol, 4.0, 1.0, 3).labels[0] == SELL  # 104 never
    assert triple_barrier_labels(CLOSE, vol, 2.0, 3.0, 3).labels[1] == HOLD  # 97.97 never
    assert triple_barrier_labels(CLOSE, vol, 2.0, 1.0, 1).labels.tolist()[:3] == [HOLD, HOLD, SELL]
    assert triple_barrier_labels(CLOSE, vol * 3, 2.0, 1.0, 3).labels.tolist() != base.tolist()
    nan_vol = vol.copy()
    nan_vol[0] = np.nan
    assert triple_barrier_labels(CLOSE, nan_vol, 2.0, 1.0, 3).labels[0] == U


def test_cusum_events_by_hand():
    close = np.array([100.0, 101.0, 102.0, 101.0, 100.0, 99.0])
    # returns .01, .0099, -.0098, -.0099, -.0101: the up sum passes .015 at bar 2, the down
    # sum passes -.015 at bar 4 (each restarts there).
    assert np.flatnonzero(cusum_events(close, np.full(6, 0.015))).tolist() == [2, 4]
    events = cusum_events(close, np.full(6, 0.015))
    labels = triple_barrier_labels(close, np.full(6, 0.01), 1.0, 1.0, 2, events).labels
    assert [labels[i] for i in (0, 1, 3, 5)] == [NOT_EVENT] * 4


def test_average_uniqueness_by_hand():
    # Events 0..3 end at bars 2, 3, 3, 6: concurrency per bar 1, 2, 3, 3, 1, 1, 1.
    weights = average_uniqueness(np.array([2, 3, 3, 6, -1, -1, -1]))
    expected = [(1 + 1 / 2 + 1 / 3) / 3, (1 / 2 + 1 / 3 + 1 / 3) / 3, 1 / 3, (1 / 3 + 3) / 4]
    np.testing.assert_allclose(weights[:4], expected)
    assert np.isnan(weights[4:]).all()


REGIME_CLOSE = np.array(
    [10, 11, 12, 13, 11.8, 14, 15, 13, 12, 11, 11.5, 10, 9, 10, 11, 12], dtype=np.float64
)


def test_atr_zigzags_by_hand():
    atr = np.ones(len(REGIME_CLOSE))
    assert atr_zigzag(REGIME_CLOSE, 2.5 * atr).tolist() == [0, 6, 12]
    assert atr_zigzag(REGIME_CLOSE, 0.9 * atr).tolist() == [0, 3, 4, 6, 12]


def regimes(atr=None, **overrides):
    params = dict(
        macro_atr_mult=2.5,
        micro_atr_mult=0.9,
        vol_crisis_threshold=1.5,
        vol_lookback=3,
        progression_tolerance=0.7,
    )
    params.update(overrides)
    atr = np.ones(len(REGIME_CLOSE)) if atr is None else atr
    return regime_labels(REGIME_CLOSE, atr, **params).tolist()


def test_regime_labels_by_hand():
    # Leg 0 -> 6: net +5 over a micro path 3 + 1.2 + 3.2 = 7.4 (progression 0.676 < 0.7):
    # RANGE. Leg 6 -> 12: net -6, no micro pivot inside (progression 1): TREND_DOWN. Bars
    # 0-1: the ATR mean over 3 bars is warming up; from the last pivot (12) on: UNKNOWN.
    assert regimes() == [U, U] + [RANGE] * 4 + [TREND_DOWN] * 6 + [U] * 4
    # A lower tolerance makes the first leg a trend.
    assert regimes(progression_tolerance=0.5)[2:6] == [TREND_UP] * 4
    # A micro threshold above the 1.2 dip leaves the first leg without micro pivots.
    assert regimes(micro_atr_mult=1.3)[2:6] == [TREND_UP] * 4
    # A macro threshold above every swing: no leg, nothing known but volatility.
    assert set(regimes(macro_atr_mult=7.0)) == {U}


def test_volatile_when_atr_jumps_against_its_mean():
    atr = np.ones(len(REGIME_CLOSE))
    atr[9] = 3.0  # mean of bars 7..9 = 5/3: ratio 1.8
    labels = regimes(atr)
    assert labels[9] == VOLATILE and labels[8] == TREND_DOWN and labels[10] == TREND_DOWN
    assert regimes(atr, vol_crisis_threshold=2.0)[9] == TREND_DOWN  # 1.8 < 2
    # The lookback sets the mean: over bars 8..9 it is 2, a ratio of 1.5 (below 1.6).
    assert regimes(atr, vol_crisis_threshold=1.6)[9] == VOLATILE
    assert regimes(atr, vol_crisis_threshold=1.6, vol_lookback=2)[9] == TREND_DOWN


@pytest.mark.parametrize("cut", [8, 11, 13])
def test_appending_bars_never_changes_a_known_label(cut):
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    atr = np.abs(rng.normal(1.0, 0.2, 400))
    vol = np.full(400, 0.01)
    full = {
        "barrier": triple_barrier_labels(close, vol, 1.0, 1.0, 10).labels,
        "regime": regime_labels(
            close,
            atr,
            macro_atr_mult=3,
            micro_atr_mult=1,
            vol_crisis_threshold=1.5,
            vol_lookback=20,
            progression_tolerance=0.5,
        ),
        "forward": threshold_labels(forward_returns(close, 5), 0.004, -0.004),
    }
    end = 400 - cut * 20
    prefix = {
        "barrier": triple_barrier_labels(close[:end], vol[:end], 1.0, 1.0, 10).labels,
        "regime": regime_labels(
            close[:end],
            atr[:end],
            macro_atr_mult=3,
            micro_atr_mult=1,
            vol_crisis_threshold=1.5,
            vol_lookback=20,
            progression_tolerance=0.5,
        ),
        "forward": threshold_labels(forward_returns(close[:end], 5), 0.004, -0.004),
    }
    for name, labels in prefix.items():
        known = labels != UNKNOWN
        assert known.any(), name
        np.testing.assert_array_equal(labels[known], full[name][:end][known], err_msg=name)
