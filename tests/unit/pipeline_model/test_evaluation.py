import numpy as np
import pandas as pd
import pytest
import torch

from libs.pipeline.config.training import EvaluationConfig
from libs.pipeline.evaluation import (
    Bars,
    block_indices,
    bootstrap,
    classification_metrics,
    confusion_matrix,
    evaluate_model,
    judge,
    periods_per_year,
    permutation_importance,
    trading_metrics,
)

# 10 hand-labelled rows; counted by hand below
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
Y_PRED = np.array([0, 1, 0, 1, 1, 2, 0, 2, 2, 2])


def test_confusion_matrix_rows_are_truth_columns_are_predictions():
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]


def test_metrics_on_a_hand_made_case():
    m = classification_metrics(Y_TRUE, Y_PRED)
    assert m["accuracy"] == pytest.approx(0.7)
    buy, hold, sell = (m["per_class"][c] for c in ("BUY", "HOLD", "SELL"))
    assert (buy["precision"], buy["recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert (hold["precision"], hold["recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert (sell["precision"], sell["recall"], sell["f1"]) == pytest.approx((0.75, 0.75, 0.75))
    assert [buy["support"], hold["support"], sell["support"]] == [3, 3, 4]
    assert m["baseline"] == {"majority_class": "SELL", "accuracy": pytest.approx(0.4)}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0.75) / 3)


def test_a_class_never_predicted_has_zero_precision_not_nan():
    m = classification_metrics(np.array([0, 1, 2]), np.array([1, 1, 1]))
    assert m["per_class"]["BUY"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_class"]["HOLD"]["precision"] == pytest.approx(1 / 3)


def _model_reading_feature(index: int, features: int) -> torch.nn.Module:
    """A linear model whose decision depends on one feature only."""
    model = torch.nn.Linear(features, 3)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
        model.weight[0, index], model.weight[2, index] = 5.0, -5.0
    return model


def test_permutation_importance_finds_the_feature_that_matters():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 4)).astype(np.float32)
    y = np.where(X[:, 2] > 0, 0, 2)
    names = ["a", "b", "c", "d"]
    ranked = permutation_importance(_model_reading_feature(2, 4), X, y, names, seed=1)
    assert ranked[0]["feature"] == "c"
    assert ranked[0]["accuracy_drop"] > 0.3
    assert all(r["accuracy_drop"] == 0.0 for r in ranked[1:])
    again = permutation_importance(_model_reading_feature(2, 4), X, y, names, seed=1)
    assert again == ranked


def test_evaluate_model_bundles_metrics_and_importance():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0]], dtype=np.float32)
    y = np.array([0, 2, 0])
    context = context_of([0.01, -0.02, 0.03], momentum=[2, 2, 2])
    m = evaluate_model(
        _model_reading_feature(0, 2),
        X,
        y,
        ["x", "y"],
        context=context,
        evaluation=EvaluationConfig(bootstrap_resamples=100),
        periods=252,
        block=1,
        seed=0,
    )
    assert m["accuracy"] == 1.0 and m["baselines"]["momentum"]["accuracy"] == 1 / 3
    assert {r["feature"] for r in m["feature_importance"]} == {"x", "y"}


def context_of(returns, momentum=None, symbol="S", start="2021-01-04"):
    n = len(returns)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "time": pd.date_range(start, periods=n, freq="D", tz="UTC"),
            "next_return": returns,
            "momentum": momentum if momentum is not None else [0] * n,
        }
    )


def test_balanced_accuracy_is_the_mean_recall_of_the_classes_present():
    m = classification_metrics(Y_TRUE, Y_PRED)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 2 / 3 + 3 / 4) / 3)
    # a class with no rows does not count
    m = classification_metrics(np.array([0, 0, 2]), np.array([0, 1, 2]))
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)


def test_trading_read_by_hand():
    returns = [0.01, -0.02, 0.03, 0.0, -0.01]
    predicted = np.array([0, 0, 2, 1, 2])  # long, long, short, flat, short
    m, bars = trading_metrics(predicted, predicted, context_of(returns), 10.0, 252)
    # position changes 1, 0, 2, 1, 1; 10 bps per unit
    net = np.array([0.01 - 0.001, -0.02, -0.03 - 0.002, 0.0 - 0.001, 0.01 - 0.001])
    np.testing.assert_allclose(bars.returns, net)
    equity = np.cumprod(1 + net)
    assert m["cumulative_return"] == pytest.approx(equity[-1] - 1)
    assert m["max_drawdown"] == pytest.approx(1 - equity[3] / equity[0])
    assert m["sharpe"] == pytest.approx(net.mean() / net.std(ddof=1) * np.sqrt(252))
    assert m["turnover"] == pytest.approx(5 / 5)
    assert m["exposure"] == pytest.approx(4 / 5)
    assert m["hit_rate"] == pytest.approx(2 / 4)


def test_several_symbols_make_an_equal_weight_portfolio_per_bar_time():
    context = pd.concat([context_of([0.02, 0.01]), context_of([-0.04, 0.03], symbol="T")])
    predicted = np.array([0, 0, 0, 2])  # S long, long; T long then short
    m, bars = trading_metrics(predicted, predicted, context, 0.0, 252)
    np.testing.assert_allclose(bars.returns, [(0.02 - 0.04) / 2, (0.01 - 0.03) / 2])
    np.testing.assert_array_equal(bars.rows, [2, 2])
    assert m["turnover"] == pytest.approx((1 + 0 + 1 + 2) / 4)  # each symbol starts flat


def test_block_bootstrap_indices_are_circular_blocks():
    idx = block_indices(5, 2, 50, np.random.default_rng(0))
    assert idx.shape == (50, 5)
    for row in idx:
        for k in (0, 2):  # each block is two consecutive positions, wrapping at the end
            assert row[k + 1] == (row[k] + 1) % 5


def test_bootstrap_intervals_by_hand():
    # correct per bar: model [1, 0, 1, 0], best baseline [0, 0, 0, 1] -> d = [1, 0, 1, -1].
    # Blocks of 2 starting anywhere: pair sums 1, 1, 0, 0 -> (a + b) / 4 is 0 (1/4),
    # 0.25 (1/2) or 0.5 (1/4): the 95 % interval is [0, 0.5].
    ones = np.ones(4)
    returns = np.array([0.01, -0.01, 0.02, 0.0])
    model = Bars(returns, np.array([1.0, 0, 1, 0]), ones)
    base = Bars(np.zeros(4), np.array([0.0, 0, 0, 1]), ones)
    ci = bootstrap(model, base, base, periods=252, block=2, resamples=4000, confidence=0.95, seed=0)
    assert ci["accuracy_minus_best_baseline"] == [0.0, 0.5]
    # one block as long as the series: every resample is a rotation -> the sample's own value
    ci = bootstrap(model, base, base, periods=252, block=4, resamples=200, confidence=0.95, seed=0)
    assert ci["accuracy_minus_best_baseline"] == pytest.approx([0.25, 0.25])
    own = returns.mean() / returns.std(ddof=1) * np.sqrt(252)
    assert ci["sharpe"] == pytest.approx([own, own])
    again = bootstrap(
        model, base, base, periods=252, block=2, resamples=500, confidence=0.9, seed=3
    )
    assert again == bootstrap(
        model, base, base, periods=252, block=2, resamples=500, confidence=0.9, seed=3
    )


def test_judge_compares_with_the_baselines_on_the_same_rows_and_says_no_without_evidence():
    rng = np.random.default_rng(1)
    returns = rng.normal(0, 0.01, 400)
    y = np.where(returns > 0, 0, 2)  # the label is the next bar's direction
    momentum = rng.choice([0, 2], 400)
    context = context_of(returns, momentum=momentum)
    evaluation = EvaluationConfig(bootstrap_resamples=500, cost_bps=0.0)
    perfect = judge(y, y, context, evaluation, periods=252, block=5, seed=0)
    assert perfect["skill"] and perfect["verdict"].startswith("evidence of skill at 95 %: yes")
    assert perfect["baselines"]["buy_and_hold"]["accuracy"] == pytest.approx((y == 0).mean())
    assert perfect["baselines"]["momentum"]["accuracy"] == pytest.approx((momentum == y).mean())
    coin = judge(rng.choice([0, 2], 400), y, context, evaluation, periods=252, block=5, seed=0)
    assert not coin["skill"] and coin["verdict"].startswith("evidence of skill at 95 %: no")
    best = coin["best_baseline"]
    assert best["accuracy"] == max(b["accuracy"] for b in coin["baselines"].values())


def test_no_skill_without_beating_the_best_baseline_on_sharpe():
    """More accurate than every baseline and a Sharpe above zero, but a steady rise that buying
    and holding rides better: not evidence of skill."""
    rng = np.random.default_rng(2)
    returns = 0.001 + rng.normal(0, 0.0003, 400)  # up nearly every bar
    y = np.where(rng.random(400) < 0.8, 0, 2)  # labels the prices do not follow
    context = context_of(returns, momentum=rng.choice([0, 2], 400))
    evaluation = EvaluationConfig(bootstrap_resamples=500, cost_bps=0.0)
    m = judge(y, y, context, evaluation, periods=252, block=5, seed=0)
    ci = m["bootstrap"]
    assert ci["accuracy_minus_best_baseline"][0] > 0 and ci["sharpe"][0] > 0
    riding = m["baselines"]["buy_and_hold"]["trading"]["sharpe"]  # majority BUY: the same
    assert m["best_baseline"]["sharpe"] == riding > m["trading"]["sharpe"]
    low, high = ci["sharpe_minus_best_baseline"]
    assert high < 0
    assert not m["skill"] and m["verdict"].startswith("evidence of skill at 95 %: no")
    assert f"= {m['trading']['sharpe'] - m['best_baseline']['sharpe']:+.2f}" in m["verdict"]
    assert f"[{low:+.2f}, {high:+.2f}]" in m["verdict"]


def test_periods_per_year_is_measured_on_the_bar_times():
    daily = pd.date_range("2021-01-01", periods=366, freq="D", tz="UTC")
    assert periods_per_year(daily) == pytest.approx(365 / (365 / 365.25))
