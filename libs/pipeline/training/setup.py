"""Train parameters and the pieces the train loop is assembled from (optimiser, LR schedule,
class weights, early stopping). Plain dataclasses: the loop never sees the strategy config
classes; pipeline.py maps the config onto these. Scheduler defaults are the config's own
(config/training.py), so a scheduler built here behaves as one a strategy leaves at defaults."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from libs.pipeline.config import training as defaults

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
LOSSES = ("cross_entropy", "focal", "huber", "mse")
REGRESSION_LOSSES = ("huber", "mse")
SCHEDULERS = ("reduce_on_plateau", "step", "exponential", "none")
MONITORS = ("val_loss", "val_accuracy")


@dataclass(frozen=True)
class SchedulerParams:
    type: str = "none"
    factor: float = defaults.PLATEAU_FACTOR  # reduce_on_plateau
    patience: int = defaults.PLATEAU_PATIENCE  # reduce_on_plateau
    step_size: int = defaults.STEP_SIZE  # step
    gamma: float | None = None  # step, exponential; None: that type's default

    def __post_init__(self) -> None:
        _check(self.type in SCHEDULERS, "lr_scheduler.type", self.type, SCHEDULERS)

    @property
    def decay(self) -> float:
        """gamma, or the default of this scheduler type."""
        if self.gamma is not None:
            return self.gamma
        return defaults.EXPONENTIAL_GAMMA if self.type == "exponential" else defaults.STEP_GAMMA


@dataclass(frozen=True)
class EarlyStopParams:
    patience: int = 10
    monitor: str = "val_loss"
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        _check(self.monitor in MONITORS, "early_stopping.monitor", self.monitor, MONITORS)
        if self.patience < 1:
            raise ValueError(f"early_stopping.patience: must be >= 1, got {self.patience}")


@dataclass(frozen=True)
class TrainParams:
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: str = "adam"
    weight_decay: float = 0.0
    scheduler: SchedulerParams = field(default_factory=SchedulerParams)
    early_stopping: EarlyStopParams | None = None
    gradient_clip: float | None = None
    class_weights: str | Sequence[float] | None = None  # "balanced" | one weight per class
    seed: int = 42
    num_classes: int = 3  # outputs of the head (1 for a regression loss)
    loss: str = "cross_entropy"
    focal_gamma: float = 2.0
    huber_delta: float = 1.0

    @property
    def regression(self) -> bool:
        return self.loss in REGRESSION_LOSSES

    def __post_init__(self) -> None:
        _check(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, OPTIMIZERS)
        _check(self.loss in LOSSES, "loss", self.loss, LOSSES)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: must be > 0, got {self.learning_rate}")


def _check(ok: bool, name: str, value: object, valid: Iterable[str]) -> None:
    if not ok:
        raise ValueError(f"{name}: unknown value {value!r}; valid: {', '.join(valid)}")


Scheduler = torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau


def make_optimizer(
    params: TrainParams, parameters: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    # foreach: one fused dispatch per step instead of one per parameter tensor -- measurably
    # faster for a small MLP on CPU too (torch only picks it by default on CUDA).
    lr, decay = params.learning_rate, params.weight_decay
    if params.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=decay, foreach=True)
    if params.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=decay, foreach=True)
    if params.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr, weight_decay=decay, foreach=True, momentum=0.9)
    return torch.optim.RMSprop(parameters, lr=lr, weight_decay=decay, foreach=True)


def make_scheduler(params: TrainParams, optimizer: torch.optim.Optimizer) -> Scheduler | None:
    s = params.scheduler
    if s.type == "reduce_on_plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=s.factor, patience=s.patience
        )
    if s.type == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.decay)
    if s.type == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=s.decay)
    return None


def class_weight_tensor(
    spec: str | Sequence[float] | None, y_train: np.ndarray | torch.Tensor, num_classes: int
) -> torch.Tensor | None:
    """`"balanced"` → n / (classes * count_c) (sklearn's rule; an absent class gets 0, it has no
    rows to weigh); a list → used as given (one non-negative weight per class)."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec != "balanced":
            raise ValueError(f"class_weights: unknown value {spec!r}; valid: balanced or a list")
        y = y_train.cpu().numpy() if isinstance(y_train, torch.Tensor) else np.asarray(y_train)
        counts = np.bincount(y.astype(np.int64), minlength=num_classes)[:num_classes]
        weights = np.where(counts > 0, len(y) / (num_classes * np.maximum(counts, 1)), 0.0)
        return torch.tensor(weights, dtype=torch.float32)
    given = [float(w) for w in spec]
    if len(given) != num_classes or any(w < 0 or math.isnan(w) for w in given):
        raise ValueError(
            f"class_weights: need {num_classes} non-negative weights (BUY, HOLD, SELL), got {spec}"
        )
    return torch.tensor(given, dtype=torch.float32)


class EarlyStopping:
    """Tracks the best epoch by the monitored metric (always: it decides which weights are
    restored) and, when configured, says when `patience` epochs brought no improvement."""

    def __init__(self, params: EarlyStopParams | None) -> None:
        self.params = params
        self.monitor = params.monitor if params else "val_loss"
        self.min_delta = params.min_delta if params else 0.0
        self.best: float | None = None
        self.best_epoch = 0
        self.epochs_without_improvement = 0

    def update(self, epoch: int, val_loss: float, val_accuracy: float) -> bool:
        """Record an epoch; True when it is the new best."""
        value = val_loss if self.monitor == "val_loss" else val_accuracy
        if self.best is None:
            better = True
        elif self.monitor == "val_loss":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best, self.best_epoch = value, epoch
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        return better

    def should_stop(self) -> bool:
        return self.params is not None and self.epochs_without_improvement >= self.params.patience


class Objective:
    """The loss the loop minimises and what counts as a correct prediction.

    Classification: cross_entropy (torch's, with the class weights) or focal (cross entropy
    scaled by (1 - p_true)^gamma, Lin et al. 2017); a row is correct when its largest logit
    is the label. Regression (one output): mse or huber (delta); correct when the predicted
    return has the label's sign (directional accuracy). Optional per-row weights (triple
    barrier uniqueness) make the batch loss a weighted mean."""

    def __init__(self, params: TrainParams, y_train: np.ndarray | torch.Tensor) -> None:
        self.params = params
        self.class_weights = (
            None
            if params.regression
            else class_weight_tensor(params.class_weights, y_train, params.num_classes)
        )
        self.target_dtype = torch.float32 if params.regression else torch.int64
        self._cross_entropy: torch.nn.CrossEntropyLoss | None = None

    def to(self, device: torch.device) -> Objective:
        if self.class_weights is not None:
            self.class_weights = self.class_weights.to(device)
        if self.params.loss == "cross_entropy":
            self._cross_entropy = torch.nn.CrossEntropyLoss(weight=self.class_weights)
        return self

    def __call__(
        self, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        functional = torch.nn.functional
        loss = self.params.loss
        if loss == "cross_entropy" and weight is None and self._cross_entropy is not None:
            loss_value: torch.Tensor = self._cross_entropy(output, target)
            return loss_value  # bit for bit the v1/v2 loss
        if loss in ("cross_entropy", "focal"):
            rows = functional.cross_entropy(
                output, target, weight=self.class_weights, reduction="none"
            )
            if loss == "focal":
                p_true = torch.exp(-functional.cross_entropy(output, target, reduction="none"))
                rows = (1.0 - p_true) ** self.params.focal_gamma * rows
        else:
            predicted = output.squeeze(-1)
            rows = (
                functional.mse_loss(predicted, target, reduction="none")
                if loss == "mse"
                else functional.huber_loss(
                    predicted, target, reduction="none", delta=self.params.huber_delta
                )
            )
        if weight is None:
            return rows.mean()
        return (rows * weight).sum() / weight.sum().clamp_min(1e-12)

    def correct(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.params.regression:
            return torch.sign(output.squeeze(-1)) == torch.sign(target)
        return output.argmax(1) == target
