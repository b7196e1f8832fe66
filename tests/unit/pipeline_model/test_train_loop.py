import copy

import numpy as np
import pytest
import torch

from libs.pipeline.progress import TrainingCancelled
from libs.pipeline.training import loop
from libs.pipeline.training.loop import train_model
from libs.pipeline.training.setup import EarlyStopParams, SchedulerParams, TrainParams
from tests.support.reporters import RecordingReporter
from tests.unit.pipeline_model.conftest import make_problem, new_model


def params(**kw) -> TrainParams:
    return TrainParams(**({"epochs": 3, "batch_size": 32, "learning_rate": 0.01} | kw))


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class SnapshotReporter(RecordingReporter):
    """Keeps the model's weights as they are when each epoch is reported."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.snapshots: list[dict] = []

    def epoch_completed(self, info):
        super().epoch_completed(info)
        self.snapshots.append(copy.deepcopy(self.model.state_dict()))


def scripted_val_losses(monkeypatch, losses: list[float]) -> None:
    """Validation figures for each epoch in turn, to steer best-epoch / early-stop logic."""
    it = iter(losses)
    monkeypatch.setattr(loop, "evaluate_loss", lambda *a, **k: (next(it), 0.5))


def test_same_seed_same_weights_different_seed_different(problem):
    def run(seed):
        model = new_model(seed=0)
        train_model(model, *problem, params(seed=seed))
        return model.state_dict()

    torch.manual_seed(1)  # global RNG state must not leak in
    first = run(5)
    torch.manual_seed(2)
    assert states_equal(first, run(5))
    assert not states_equal(first, run(6))


def test_best_epoch_weights_are_restored(problem, monkeypatch):
    scripted_val_losses(monkeypatch, [1.0, 0.8, 0.5, 0.9, 1.2])
    model = new_model()
    reporter = SnapshotReporter(model)
    outcome = train_model(model, *problem, params(epochs=5), reporter=reporter)
    assert outcome.best_epoch == 3
    assert [h["best_epoch"] for h in outcome.history] == [1, 2, 3, 3, 3]
    assert states_equal(model.state_dict(), reporter.snapshots[2])
    assert not states_equal(model.state_dict(), reporter.snapshots[4])


def test_early_stopping_stops_after_patience(problem, monkeypatch):
    scripted_val_losses(monkeypatch, [1.0, 0.7, 0.69995, 0.8, 0.9, 0.1, 0.1])
    outcome = train_model(
        new_model(),
        *problem,
        params(epochs=7, early_stopping=EarlyStopParams(patience=3, min_delta=0.001)),
    )
    # epoch 3 improves by less than min_delta: epochs 3, 4, 5 bring nothing -> stop after 5
    assert outcome.epochs_run == 5
    assert outcome.stopped_early
    assert outcome.best_epoch == 2


def test_early_stopping_can_monitor_accuracy(problem, monkeypatch):
    accuracies = iter([0.4, 0.6, 0.5, 0.55, 0.9])
    monkeypatch.setattr(loop, "evaluate_loss", lambda *a, **k: (1.0, next(accuracies)))
    outcome = train_model(
        new_model(),
        *problem,
        params(epochs=5, early_stopping=EarlyStopParams(patience=2, monitor="val_accuracy")),
    )
    assert (outcome.epochs_run, outcome.best_epoch) == (4, 2)


def test_without_early_stopping_all_epochs_run(problem, monkeypatch):
    scripted_val_losses(monkeypatch, [1.0, 2.0, 3.0, 4.0])
    outcome = train_model(new_model(), *problem, params(epochs=4))
    assert outcome.epochs_run == 4 and not outcome.stopped_early and outcome.best_epoch == 1


class CancelAfter(RecordingReporter):
    """Reporter + token: cancelled once `n` batches have been reported."""

    def __init__(self, n):
        super().__init__()
        self.n = n
        self.batches = 0

    def batch_progress(self, info):
        super().batch_progress(info)
        self.batches += 1

    def is_cancelled(self):
        return self.batches >= self.n


@pytest.mark.parametrize("n", [1, 5, 15])
def test_cancellation_stops_within_one_batch(problem, n):
    # 400 rows / 32 = 13 batches per epoch, so n=15 cancels in epoch 2
    spy = CancelAfter(n)
    model = new_model()
    steps = []
    model.register_forward_hook(lambda m, i, o: steps.append(m.training) if m.training else None)
    with pytest.raises(TrainingCancelled) as raised:
        train_model(model, *problem, params(epochs=3), reporter=spy, token=spy)
    assert spy.batches == n
    assert len(steps) == n  # no forward pass in training mode after the token flipped
    assert raised.value.phase == "training"
    assert raised.value.epoch == (1 if n <= 13 else 2)


def test_batch_reports_are_complete_and_exact_at_epoch_end(problem):
    reporter = RecordingReporter()
    outcome = train_model(new_model(), *problem, params(epochs=2), reporter=reporter)
    batches = [info for kind, info in reporter.calls if kind == "batch"]
    assert len(batches) == 2 * 13
    assert [b.batch for b in batches[:13]] == list(range(1, 14))
    assert batches[-1].progress == pytest.approx(1.0)
    assert batches[-1].eta_s == pytest.approx(0.0)
    for epoch in (1, 2):
        last = batches[epoch * 13 - 1]
        assert last.loss == pytest.approx(outcome.history[epoch - 1]["train_loss"])
        assert last.accuracy == pytest.approx(outcome.history[epoch - 1]["train_accuracy"])
    kinds = [kind for kind, _ in reporter.calls]
    assert kinds.index("epoch") == 13  # the epoch report follows its last batch


def test_running_figures_are_none_until_folded_never_zero(problem):
    """Statistics fold lazily: before an epoch's first fold the running figures are unknown
    (None), and every figure that is reported is the real running mean (never a stand-in 0)."""
    reporter = RecordingReporter()
    # A fold interval longer than the run: only each epoch's last batch folds.
    train_model(new_model(), *problem, params(epochs=2), reporter=reporter, stats_interval_s=3600)
    batches = [info for kind, info in reporter.calls if kind == "batch"]
    for info in batches:
        if info.batch < info.total_batches:
            assert info.loss is None and info.accuracy is None
        else:
            assert info.loss is not None and info.loss > 0
            assert info.accuracy is not None


def test_running_figures_match_an_independent_computation(problem):
    """Recompute epoch 1's mean loss/accuracy with the same seed from a loop of our own."""
    X, y, Xv, yv = problem
    model = new_model(dropout=0.0)
    reference = copy.deepcopy(model)
    outcome = train_model(model, X, y, Xv, yv, params(epochs=1, optimizer="sgd"))

    opt = torch.optim.SGD(reference.parameters(), lr=0.01, momentum=0.9)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(42))
    Xp, yp = torch.from_numpy(X)[perm], torch.from_numpy(y)[perm]
    loss_sum, correct = 0.0, 0
    for start in range(0, len(X), 32):
        xb, yb = Xp[start : start + 32], yp[start : start + 32]
        opt.zero_grad()
        logits = reference(xb)
        loss = torch.nn.functional.cross_entropy(logits, yb)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(xb)
        correct += int((logits.argmax(1) == yb).sum())
    assert outcome.history[0]["train_loss"] == pytest.approx(loss_sum / len(X), rel=1e-5)
    assert outcome.history[0]["train_accuracy"] == pytest.approx(correct / len(X))


def test_class_weights_change_the_loss(problem):
    def first_epoch_loss(weights):
        outcome = train_model(new_model(), *problem, params(epochs=1, class_weights=weights))
        return outcome.history[0]["train_loss"]

    plain = first_epoch_loss(None)
    assert first_epoch_loss([1.0, 1.0, 1.0]) == pytest.approx(plain)
    assert first_epoch_loss([1.0, 10.0, 1.0]) != pytest.approx(plain, rel=1e-3)
    assert first_epoch_loss("balanced") != pytest.approx(plain, rel=1e-3)


def test_balanced_class_weights_by_hand():
    from libs.pipeline.training.setup import class_weight_tensor

    w = class_weight_tensor("balanced", np.array([0, 0, 0, 1]), 3)
    # n / (k * count): 4/9 for BUY, 4/3 for HOLD, SELL absent -> 0
    assert w.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])
    with pytest.raises(ValueError, match="class_weights"):
        class_weight_tensor([1.0, 2.0], np.array([0]), 3)


@pytest.mark.parametrize(
    "scheduler, expected",
    [
        (SchedulerParams("step", step_size=2, gamma=0.5), [0.01, 0.01, 0.005, 0.005]),
        (SchedulerParams("exponential", gamma=0.1), [0.01, 0.001, 0.0001, 0.00001]),
        (SchedulerParams("none"), [0.01] * 4),
    ],
)
def test_lr_schedules(problem, scheduler, expected):
    outcome = train_model(new_model(), *problem, params(epochs=4, scheduler=scheduler))
    assert [h["learning_rate"] for h in outcome.history] == pytest.approx(expected)


def test_reduce_on_plateau_follows_val_loss(problem, monkeypatch):
    scripted_val_losses(monkeypatch, [1.0, 1.0, 1.0, 1.0, 1.0])
    outcome = train_model(
        new_model(),
        *problem,
        params(epochs=5, scheduler=SchedulerParams("reduce_on_plateau", factor=0.5, patience=1)),
    )
    # no improvement after epoch 1: patience 1 -> halve after epochs 3 and 5 ... seen from 4 on
    lrs = [h["learning_rate"] for h in outcome.history]
    assert lrs[:3] == pytest.approx([0.01, 0.01, 0.01])
    assert lrs[3] == pytest.approx(0.005)


def test_gradient_clipping_bounds_the_step():
    X, y = make_problem(64)

    def step_size(clip):
        model = new_model(dropout=0.0)
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        train_model(
            model,
            X,
            y,
            X,
            y,
            TrainParams(
                epochs=1, batch_size=64, learning_rate=1.0, optimizer="sgd", gradient_clip=clip
            ),
        )
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        return float((after - before).norm())

    assert step_size(1e-3) == pytest.approx(1e-3, rel=1e-3)  # lr 1 x clipped grad norm
    assert step_size(None) > 0.01


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_learns(problem, optimizer):
    outcome = train_model(
        new_model(), *problem, params(epochs=15, optimizer=optimizer, learning_rate=0.01)
    )
    # the labels are a threshold on feature 0: far above the 1/3 of guessing
    assert max(h["val_accuracy"] for h in outcome.history) > 0.7


def test_bad_params_name_the_field():
    with pytest.raises(ValueError, match="optimizer.*valid: adam, adamw, sgd, rmsprop"):
        params(optimizer="lbfgs")
    with pytest.raises(ValueError, match="batch_size"):
        params(batch_size=0)
    with pytest.raises(ValueError, match="lr_scheduler.type"):
        SchedulerParams("cosine")
