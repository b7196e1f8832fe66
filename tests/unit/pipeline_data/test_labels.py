"""ZigZag segment labels on hand-built series (0 BUY, 1 HOLD, 2 SELL)."""

from __future__ import annotations

import numpy as np

from libs.pipeline.labels import BUY, HOLD, SELL, zigzag_labels, zigzag_pivots

# 5 % threshold: 100 -> 106 confirms the low at 0; 106 -> 99 the high at 2; 97 -> 104 the
# low at 5; 106 -> 100 the high at 9; the final fall to 99 is not 5 % below a high, so
# nothing after bar 9 is confirmed.
CLOSE = np.array([100, 102, 106, 103, 99, 97, 98, 101, 104, 106, 104, 100, 99], dtype=float)


def test_pivots():
    assert zigzag_pivots(CLOSE, 0.05).tolist() == [0, 2, 5, 9]


def test_labels_between_pivots_follow_the_next_pivot():
    expected = [HOLD, BUY, HOLD, SELL, SELL, HOLD, BUY, BUY, BUY, HOLD, HOLD, HOLD, HOLD]
    assert zigzag_labels(CLOSE, 0.05, lookahead=20).tolist() == expected


def test_lookahead_caps_how_far_the_next_pivot_may_be():
    # bar 6 is 3 bars before pivot 9: too far with lookahead 2
    expected = [HOLD, BUY, HOLD, SELL, SELL, HOLD, HOLD, BUY, BUY, HOLD, HOLD, HOLD, HOLD]
    assert zigzag_labels(CLOSE, 0.05, lookahead=2).tolist() == expected


def test_series_starting_downwards():
    close = np.array([100, 98, 94, 96, 100], dtype=float)
    assert zigzag_pivots(close, 0.05).tolist() == [0, 2]
    assert zigzag_labels(close, 0.05, 10).tolist() == [HOLD, SELL, HOLD, HOLD, HOLD]


def test_small_moves_are_all_hold():
    close = 100 + np.sin(np.arange(200)) * 0.5  # +-0.5 %: below a 2 % threshold
    assert (zigzag_labels(close, 0.02, 20) == HOLD).all()
    assert zigzag_labels(np.array([]), 0.02, 20).tolist() == []


def test_pivots_alternate_between_highs_and_lows_on_a_random_walk():
    close = np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 5000)))
    pivots = zigzag_pivots(close, 0.03)
    assert len(pivots) > 10 and (np.diff(pivots) > 0).all()
    moves = np.diff(close[pivots])
    assert (np.sign(moves[1:]) == -np.sign(moves[:-1])).all()  # up, down, up, ...
    assert (np.abs(moves) / close[pivots][:-1] >= 0.03 - 1e-12).all()
    labels = zigzag_labels(close, 0.03, lookahead=10**9)
    inner = np.setdiff1d(np.arange(pivots[0] + 1, pivots[-1]), pivots)
    assert set(labels[inner].tolist()) <= {BUY, SELL}  # no HOLD strictly inside the legs
