"""Membership functions against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from libs.pipeline.config.sections import FuzzyInputConfig
from libs.pipeline.fuzzy import fuzzy_input, gaussian, trapezoidal, triangular


def test_triangular_points():
    x = np.array([-1, 0, 5, 10, 20, 25, 30, 31, np.nan])
    expected = [0, 0, 0.5, 1, 0.5, 0.25, 0, 0, np.nan]
    np.testing.assert_allclose(triangular(x, 0, 10, 30), expected)


@pytest.mark.parametrize(
    ("params", "x", "expected"),
    [
        ((0, 0, 30), [-1, 0, 15, 30], [0, 1, 0.5, 0]),  # left shoulder: 1 at b == a
        ((70, 100, 100), [69, 85, 100, 101], [0, 0.5, 1, 0]),  # right shoulder: 1 at b == c
    ],
)
def test_triangular_degenerate_sides_still_peak_at_b(params, x, expected):
    np.testing.assert_allclose(triangular(np.array(x, float), *params), expected)


def test_trapezoidal_points():
    x = np.array([20, 25, 30, 40, 50, 60, 70, 75, 80, np.nan])
    expected = [0, 0, 1 / 3, 1, 1, 1, 1 / 3, 0, 0, np.nan]
    np.testing.assert_allclose(trapezoidal(x, 25, 40, 60, 75), expected)


def test_trapezoidal_shoulder():
    np.testing.assert_allclose(
        trapezoidal(np.array([-5.0, 0, 20, 30]), 0, 0, 20, 40), [0, 1, 1, 0.5]
    )


def test_gaussian_points():
    x = np.array([85, 93, 77, 69, np.nan])
    expected = [1, math.exp(-0.5), math.exp(-0.5), math.exp(-2), np.nan]
    np.testing.assert_allclose(gaussian(x, 85, 8), expected)


def test_price_ratio_fuzzifies_reference_over_indicator():
    fuzzy = FuzzyInputConfig.model_validate(
        {
            "input_transform": {"type": "price_ratio", "reference": "close"},
            "near": [0.99, 1.0, 1.01],
            "above": [1.0, 1.04, 1.08],
        }
    )
    bars = pd.DataFrame({"close": [102.0, 100.0, 99.0]})
    sma = np.array([100.0, 100.0, np.nan])
    out = fuzzy_input("sma_20", fuzzy, sma, bars)
    assert list(out) == ["sma_20_near", "sma_20_above"]
    np.testing.assert_allclose(out["sma_20_near"], [0, 1, np.nan])
    np.testing.assert_allclose(out["sma_20_above"], [0.5, 0, np.nan])
