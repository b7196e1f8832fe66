import numpy as np
import pytest
import torch

from libs.pipeline.evaluation import (
    classification_metrics,
    confusion_matrix,
    evaluate_model,
    permutation_importance,
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
    m = evaluate_model(_model_reading_feature(0, 2), X, y, ["x", "y"], seed=0)
    assert m["accuracy"] == 1.0
    assert {r["feature"] for r in m["feature_importance"]} == {"x", "y"}
