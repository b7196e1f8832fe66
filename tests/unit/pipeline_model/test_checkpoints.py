"""Checkpoints of the train loop: a run stopped or killed anywhere and resumed from its last
checkpoint ends with the very weights (bit for bit) of a run never interrupted."""

from __future__ import annotations

import hashlib
import io

import pytest
import torch
from torch import nn

from libs.pipeline.progress import TrainingCancelled
from libs.pipeline.training.checkpoint import CheckpointMismatch, Position, position_of
from libs.pipeline.training.loop import train_model
from libs.pipeline.training.setup import EarlyStopParams, SchedulerParams, TrainParams
from tests.support.checkpoints import MemoryCheckpoints
from tests.support.reporters import RecordingReporter
from tests.unit.pipeline_model.conftest import new_model

# 400 rows / 32 = 13 batches per epoch (the `problem` fixture)
BATCHES = 13


def params(**kw) -> TrainParams:
    base = {"epochs": 4, "batch_size": 32, "learning_rate": 0.01, "seed": 3}
    return TrainParams(**(base | kw))


def digest(model: nn.Module) -> str:
    buffer = io.BytesIO()
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


class Killed(BaseException):
    """Stands in for kill -9: nothing after it runs, no checkpoint is written on the way out."""


class StopAt(RecordingReporter):
    """Reporter + token: after `n` batches, raise Killed (kill -9) or set the token (SIGTERM)."""

    def __init__(self, n: int, *, kill: bool) -> None:
        super().__init__()
        self.n, self.kill, self.batches = n, kill, 0

    def batch_progress(self, info):
        super().batch_progress(info)
        self.batches += 1
        if self.kill and self.batches == self.n:
            raise Killed

    def is_cancelled(self) -> bool:
        return not self.kill and self.batches >= self.n


class TorchDropoutNet(nn.Module):
    """Not the project's MLP: nn.Dropout draws from torch's GLOBAL generator (as LSTM/GRU
    dropout does), so resuming must restore that too."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(11)
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-0.3, 0.3, generator=gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


SETUPS = {
    "mlp-adam-plateau-dropout": (
        lambda: new_model(dropout=0.2),
        params(scheduler=SchedulerParams(type="reduce_on_plateau", patience=1)),
    ),
    "mlp-sgd-step-balanced": (
        lambda: new_model(),
        params(
            optimizer="sgd",
            scheduler=SchedulerParams(type="step", step_size=1),
            class_weights="balanced",
            gradient_clip=1.0,
        ),
    ),
    "global-rng-dropout-module": (TorchDropoutNet, params(optimizer="adamw")),
}


def uninterrupted(problem, make, p) -> str:
    torch.manual_seed(5)
    model = make()
    train_model(model, *problem, p)
    return digest(model)


@pytest.mark.parametrize("setup", list(SETUPS))
@pytest.mark.parametrize(
    ("stop_after", "kill"),
    [
        (BATCHES + 5, True),  # kill -9 mid-epoch 2: resumes from the end of epoch 1
        (2 * BATCHES, True),  # killed right after epoch 2's last batch, before its end
        (BATCHES + 5, False),  # SIGTERM mid-epoch 2: checkpoints that very batch
        (3 * BATCHES, False),  # stopped after epoch 3's last batch
    ],
)
def test_a_resumed_run_ends_bit_identical(problem, setup, stop_after, kill):
    make, p = SETUPS[setup]
    expected = uninterrupted(problem, make, p)

    torch.manual_seed(5)
    sink = MemoryCheckpoints()
    stopper = StopAt(stop_after, kill=kill)
    with pytest.raises(Killed if kill else TrainingCancelled):
        train_model(make(), *problem, p, reporter=stopper, token=stopper, checkpoints=sink)
    done_epochs = stop_after // BATCHES - (1 if kill and stop_after % BATCHES == 0 else 0)
    if kill:  # nothing written after the last completed epoch
        assert position_of(sink.latest()) == Position(done_epochs + 1, 0)
    else:  # the stop itself is kept, to the batch
        assert position_of(sink.latest()) == Position(
            stop_after // BATCHES + (stop_after % BATCHES > 0), stop_after % BATCHES or BATCHES
        )

    torch.manual_seed(999)  # a fresh process's global state: the checkpoint must restore it
    resumed = make()
    reporter = RecordingReporter()
    outcome = train_model(resumed, *problem, p, reporter=reporter, checkpoints=sink)
    assert digest(resumed) == expected
    epochs = [info.epoch for kind, info in reporter.calls if kind == "epoch"]
    assert epochs[0] > 1 and epochs[-1] == p.epochs
    assert [h["epoch"] for h in outcome.history] == list(range(1, p.epochs + 1))


def test_interval_checkpoints_within_an_epoch_resume_bit_identical(problem):
    make, p = SETUPS["mlp-adam-plateau-dropout"]
    expected = uninterrupted(problem, make, p)
    torch.manual_seed(5)
    sink = MemoryCheckpoints(interval_s=0.0)  # every batch
    train_model(make(), *problem, p, checkpoints=sink)
    positions = sink.positions()
    assert Position(2, 7) in positions and Position(3, 0) in positions
    killed_at = sink.up_to(Position(2, 7))
    resumed = make()
    train_model(resumed, *problem, p, checkpoints=killed_at)
    assert digest(resumed) == expected


def test_early_stopping_state_survives_a_resume(problem):
    make = SETUPS["mlp-adam-plateau-dropout"][0]
    p = params(epochs=30, early_stopping=EarlyStopParams(patience=2), learning_rate=0.05)
    torch.manual_seed(5)
    whole = make()
    expected_outcome = train_model(whole, *problem, p)
    assert expected_outcome.stopped_early  # the setup must exercise early stopping
    sink = MemoryCheckpoints()
    stopper = StopAt(BATCHES * (expected_outcome.epochs_run - 1) + 3, kill=True)
    with pytest.raises(Killed):
        train_model(make(), *problem, p, reporter=stopper, token=stopper, checkpoints=sink)
    resumed = make()
    outcome = train_model(resumed, *problem, p, checkpoints=sink)
    assert (outcome.epochs_run, outcome.best_epoch) == (
        expected_outcome.epochs_run,
        expected_outcome.best_epoch,
    )
    assert digest(resumed) == digest(whole)


def test_a_finished_run_resumed_trains_no_more(problem):
    make, p = SETUPS["mlp-sgd-step-balanced"]
    sink = MemoryCheckpoints()
    model = make()
    train_model(model, *problem, p, checkpoints=sink)
    assert position_of(sink.latest()) == Position(p.epochs + 1, 0)
    again, reporter = make(), RecordingReporter()
    outcome = train_model(again, *problem, p, reporter=reporter, checkpoints=sink)
    assert not [kind for kind, _ in reporter.calls if kind == "batch"]
    assert digest(again) == digest(model) and outcome.epochs_run == p.epochs


def test_a_checkpoint_of_another_setup_is_refused(problem):
    make, p = SETUPS["mlp-sgd-step-balanced"]
    sink = MemoryCheckpoints()
    train_model(make(), *problem, p, checkpoints=sink)
    with pytest.raises(CheckpointMismatch, match="other data, parameters or model"):
        train_model(make(), *problem, params(batch_size=16), checkpoints=sink)
