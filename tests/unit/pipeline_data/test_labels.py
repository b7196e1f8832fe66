"""ZigZag segment labels on hand-built series (0 BUY, 1 HOLD, 2 SELL, -1 UNKNOWN)."""

from __future__ import annotations

import numpy as np

from libs.pipeline.labels import BUY, HOLD, SELL, UNKNOWN, zigzag_labels, zigzag_pivots

# 5 % threshold: 100 -> 106 confirms the low at 0; 106 -> 99 the high at 2; 97 -> 104 the
# low at 5; 106 -> 100 the high at 9; the final fall to 99 is not 5 % below a high, so
# nothing after bar 9 is confirmed: bars 10-12 are UNKNOWN (the down-leg's end is not known).
CLOSE = np.array([100, 102, 106, 103, 99, 97, 98, 101, 104, 106, 104, 100, 99], dtype=float)


def test_pivots():
    assert zigzag_pivots(CLOSE, 0.05).tolist() == [0, 2, 5, 9]


def test_labels_between_pivots_follow_the_next_pivot():
    expected = [HOLD, BUY, HOLD, SELL, SELL, HOLD, BUY, BUY, BUY, HOLD, UNKNOWN, UNKNOWN, UNKNOWN]
    assert zigzag_labels(CLOSE, 0.05, lookahead=20).tolist() == expected


def test_lookahead_caps_how_far_the_next_pivot_may_be():
    # bar 6 is 3 bars before pivot 9: too far with lookahead 2. The open leg's running low is
    # bar 12, so the coming pivot is at 12 or later: bar 9 + 1 = 10 is within 2 bars of it,
    # unknown; nothing in the tail is certainly too far.
    expected = [HOLD, BUY, HOLD, SELL, SELL, HOLD, HOLD, BUY, BUY, HOLD, UNKNOWN, UNKNOWN, UNKNOWN]
    assert zigzag_labels(CLOSE, 0.05, lookahead=2).tolist() == expected


def test_series_starting_downwards():
    close = np.array([100, 98, 94, 96, 100], dtype=float)
    assert zigzag_pivots(close, 0.05).tolist() == [0, 2]
    assert zigzag_labels(close, 0.05, 10).tolist() == [HOLD, SELL, HOLD, UNKNOWN, UNKNOWN]


def test_without_a_pivot_only_bars_before_the_running_extremes_are_known():
    close = 100 + np.sin(np.arange(200)) * 0.5  # +-0.5 %: below a 2 % threshold
    first_extreme = min(int(np.argmax(close)), int(np.argmin(close)))
    labels = zigzag_labels(close, 0.02, 10**6)
    assert (labels[:first_extreme] == HOLD).all() and (labels[first_extreme:] == UNKNOWN).all()
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


def test_a_known_label_is_what_every_longer_series_says():
    """Appending bars (or perturbing any bar after the data a label was read from) changes
    no label that is not UNKNOWN: the property that makes end-of-file labels honest."""
    rng = np.random.default_rng(11)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, 3000)))
    for lookahead in (5, 40, 10**6):
        full = zigzag_labels(close, 0.03, lookahead)
        for end in range(50, 3000, 97):
            prefix = zigzag_labels(close[:end], 0.03, lookahead)
            known = prefix != UNKNOWN
            assert (prefix[known] == full[:end][known]).all()
            # and any other continuation: a perturbed tail changes no known label
            other = close.copy()
            other[end:] *= np.exp(rng.normal(0, 0.05, 3000 - end))
            again = zigzag_labels(other, 0.03, lookahead)[:end]
            assert (again[known] == prefix[known]).all()


def test_bars_after_the_last_pivot_are_unknown_unless_certainly_hold():
    close = np.array([100, 106, 100, 101, 102, 103, 104, 105, 104.5], dtype=float)
    # pivots: low 0, high 1 (confirmed at 2), then the leg up from low 2 runs to 105 at 7
    assert zigzag_pivots(close, 0.05).tolist() == [0, 1, 2]
    labels = zigzag_labels(close, 0.05, lookahead=3)
    # the coming high is at bar 7 or later: bars 3 (4 bars before it) is certainly HOLD
    assert labels.tolist() == [HOLD, HOLD, HOLD, HOLD] + [UNKNOWN] * 5
