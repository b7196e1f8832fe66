"""The train loop: manual tensor batching, optimiser, schedule, early stopping, best-epoch restore.

Why manual batching: a shuffled DataLoader collates row by row and halves CPU throughput for a
small MLP. Here the whole split lives on the device; each epoch permutes it once with a seeded
generator and the batches are contiguous slices (views, no copies).

Why deferred statistics: reading a loss with `.item()` forces a device sync on CUDA and costs a
few dispatches even on CPU. Batch losses and logits are kept as detached tensors and folded into
the running loss/accuracy at most every `stats_interval_s` (and always at the end of an epoch),
so the reporter still gets a BatchInfo after every batch -- with running figures at most that
old -- and the epoch figures are exact.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from libs.pipeline.model import attach_dropout_generator
from libs.pipeline.progress import (
    BatchInfo,
    CancellationToken,
    EpochInfo,
    Never,
    NullReporter,
    Reporter,
    TrainingCancelled,
)
from libs.pipeline.training.checkpoint import (
    CheckpointMismatch,
    CheckpointSink,
    Position,
    decode,
    encode,
    fingerprint,
    global_rng_states,
    restore_global_rng_states,
)
from libs.pipeline.training.setup import (
    EarlyStopping,
    Objective,
    Scheduler,
    TrainParams,
    make_optimizer,
    make_scheduler,
)


@dataclass
class TrainOutcome:
    history: list[dict[str, Any]]  # one EpochInfo as a dict per epoch run
    best_epoch: int  # 1-based; its weights are the ones left in the model
    epochs_run: int
    stopped_early: bool
    best_state: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    def summary(self) -> dict[str, Any]:
        best = self.history[self.best_epoch - 1]
        return {
            "history": self.history,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
            "train_loss": best["train_loss"],
            "train_accuracy": best["train_accuracy"],
            "val_loss": best["val_loss"],
            "val_accuracy": best["val_accuracy"],
        }


class _RunningStats:
    """Running loss/accuracy over one epoch, folded lazily from detached tensors."""

    def __init__(self, y_epoch: torch.Tensor, objective: Objective | None = None) -> None:
        self.objective = objective  # what counts as correct (None: the largest logit)
        self.y_epoch = y_epoch  # labels in this epoch's (permuted) order
        self.losses: list[torch.Tensor] = []
        self.logits: list[torch.Tensor] = []
        self.folded_rows = 0
        self.loss_sum = 0.0
        self.correct = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor) -> None:
        self.losses.append(loss.detach())
        self.logits.append(logits.detach())

    def fold(self) -> None:
        if not self.logits:
            return
        logits = torch.cat(self.logits)
        rows = logits.shape[0]
        sizes = torch.tensor([t.shape[0] for t in self.logits], dtype=logits.dtype)
        losses = torch.stack(self.losses).to(logits.dtype)
        target = self.y_epoch[self.folded_rows : self.folded_rows + rows]
        # One batch at a time in float64: the total must not depend on how many batches each
        # (timing-driven) fold covers, or the same seed would give different metrics per path.
        for batch_loss, size in zip(losses.cpu().tolist(), sizes.tolist(), strict=True):
            self.loss_sum += batch_loss * size
        if self.objective is None:
            hits = logits.argmax(1) == target
        else:
            hits = self.objective.correct(logits, target)
        self.correct += int(hits.sum())
        self.folded_rows += rows
        self.losses.clear()
        self.logits.clear()

    # None until the first fold of the epoch: an unknown figure is absent, never a fake 0.
    @property
    def loss(self) -> float | None:
        return self.loss_sum / self.folded_rows if self.folded_rows else None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.folded_rows if self.folded_rows else None

    def epoch_figures(self) -> tuple[float, float]:
        """The whole epoch's mean loss and accuracy (every batch folded: the epoch is over)."""
        self.fold()
        assert self.folded_rows, "an epoch has at least one row"
        return self.loss_sum / self.folded_rows, self.correct / self.folded_rows


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, criterion: Objective, X: torch.Tensor, y: torch.Tensor, chunk: int = 65536
) -> tuple[float, float]:
    """Mean loss and accuracy in eval mode, in chunks so a huge split does not blow memory."""
    if X.shape[0] == 0:
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=X.device)
    correct = torch.zeros((), device=X.device, dtype=torch.int64)
    for start in range(0, X.shape[0], chunk):
        xb, yb = X[start : start + chunk], y[start : start + chunk]
        logits = model(xb)
        loss_sum += criterion(logits, yb) * xb.shape[0]
        correct += criterion.correct(logits, yb).sum()
    model.train(was_training)
    return float(loss_sum) / X.shape[0], int(correct) / X.shape[0]


def train_model(
    model: nn.Module,
    X_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    X_val: np.ndarray | torch.Tensor,
    y_val: np.ndarray | torch.Tensor,
    params: TrainParams,
    *,
    device: torch.device | str = "cpu",
    reporter: Reporter | None = None,
    token: CancellationToken | None = None,
    stats_interval_s: float = 0.05,
    checkpoints: CheckpointSink | None = None,
    w_train: np.ndarray | None = None,
) -> TrainOutcome:
    """Train `model` in place; on return it holds the best epoch's weights (by the monitored
    metric). Raises TrainingCancelled within one batch of the token being set.

    With `checkpoints`, the run continues from `checkpoints.latest()` when there is one, and
    hands a checkpoint to the sink at every epoch end, at most every `interval_s` within an
    epoch, and when the token stops it (training/checkpoint.py)."""
    reporter = reporter or NullReporter()
    token = token or Never()
    device = torch.device(device)
    model.to(device)
    # The loss (and the target dtype: classes or returns); w_train: per-row loss weights.
    criterion = Objective(params, y_train).to(device)
    target = criterion.target_dtype
    Xt, yt = _as_tensor(X_train, torch.float32, device), _as_tensor(y_train, target, device)
    Xv, yv = _as_tensor(X_val, torch.float32, device), _as_tensor(y_val, target, device)
    wt = None if w_train is None else _as_tensor(w_train, torch.float32, device)
    n = Xt.shape[0]
    if n == 0:
        raise ValueError("X_train: no training rows")
    run = _Run(
        model=model,
        optimizer=make_optimizer(params, model.parameters()),
        stopper=EarlyStopping(params.early_stopping),
        shuffle_gen=torch.Generator().manual_seed(params.seed),
        dropout_gen=torch.Generator(device=device).manual_seed(params.seed + 1),
        sink=checkpoints,
        fingerprint=fingerprint(
            params, tuple(Xt.shape), tuple(Xv.shape), _shapes(model), type(model).__name__
        ),
    )
    run.scheduler = make_scheduler(params, run.optimizer)
    if checkpoints is not None and (data := checkpoints.latest()) is not None:
        run.restore(decode(data))
    attach_dropout_generator(model, run.dropout_gen)

    bs = params.batch_size
    total_batches = math.ceil(n / bs)
    total_steps = params.epochs * total_batches
    train_started = time.perf_counter()
    steps_at_start = run.steps_done
    model.train()
    try:
        while not run.finished and run.epoch <= params.epochs:
            epoch = run.epoch
            if token.is_cancelled():
                raise TrainingCancelled(phase="training", epoch=epoch)
            epoch_started = time.perf_counter()
            run.epoch_shuffle_state = run.shuffle_gen.get_state()
            perm = torch.randperm(n, generator=run.shuffle_gen).to(device)
            X_epoch, y_epoch = Xt[perm], yt[perm]
            w_epoch = None if wt is None else wt[perm]
            stats = run.take_stats(y_epoch, criterion)
            last_fold = last_checkpoint = epoch_started
            lr = run.optimizer.param_groups[0]["lr"]
            first = run.batch
            for b in range(first, total_batches):
                xb = X_epoch[b * bs : (b + 1) * bs]
                yb = y_epoch[b * bs : (b + 1) * bs]
                run.optimizer.zero_grad(set_to_none=True)
                wb = None if w_epoch is None else w_epoch[b * bs : (b + 1) * bs]
                logits = model(xb)
                loss = criterion(logits, yb, wb)
                loss.backward()  # type: ignore[no-untyped-call]
                if params.gradient_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), params.gradient_clip)
                run.optimizer.step()
                stats.add(loss, logits)

                run.batch, run.steps_done = b + 1, run.steps_done + 1
                now = time.perf_counter()
                last_batch = b + 1 == total_batches
                if last_batch or now - last_fold >= stats_interval_s:
                    stats.fold()
                    last_fold = now
                steps_here = run.steps_done - steps_at_start
                reporter.batch_progress(
                    BatchInfo(
                        epoch=epoch,
                        total_epochs=params.epochs,
                        batch=b + 1,
                        total_batches=total_batches,
                        loss=stats.loss,
                        accuracy=stats.accuracy,
                        samples_per_s=(min(n, (b + 1) * bs) - first * bs)
                        / max(now - epoch_started, 1e-9),
                        progress=run.steps_done / total_steps,
                        eta_s=(now - train_started) / steps_here * (total_steps - run.steps_done),
                    )
                )
                if token.is_cancelled():
                    raise TrainingCancelled(phase="training", epoch=epoch)
                interval = checkpoints.interval_s if checkpoints is not None else None
                if not last_batch and interval is not None and now - last_checkpoint >= interval:
                    run.checkpoint()
                    last_checkpoint = time.perf_counter()

            train_loss, train_acc = stats.epoch_figures()
            val_loss, val_acc = evaluate_loss(model, criterion, Xv, yv)
            if math.isnan(val_loss):  # no validation rows: judge epochs on the training figures
                val_loss, val_acc = train_loss, train_acc
            if run.stopper.update(epoch, val_loss, val_acc):
                run.best_state = _snapshot(model)
            _step_scheduler(run.scheduler, val_loss)
            info = EpochInfo(
                epoch=epoch,
                total_epochs=params.epochs,
                train_loss=train_loss,
                train_accuracy=train_acc,
                val_loss=val_loss,
                val_accuracy=val_acc,
                learning_rate=lr,
                duration_s=time.perf_counter() - epoch_started,
                best_epoch=run.stopper.best_epoch,
            )
            run.history.append(info.__dict__.copy())
            run.end_epoch(finished=run.stopper.should_stop() or epoch == params.epochs)
            run.checkpoint()
            reporter.epoch_completed(info)
    except TrainingCancelled:
        # Stopped within an epoch: keep where it stands, so a run given back (shutdown, a lost
        # delivery) continues from this very batch. A stop at an epoch's start has nothing new.
        if run.batch > 0:
            run.checkpoint()
        raise
    finally:
        attach_dropout_generator(model, None)  # a generator is not picklable / savable state

    history = run.history
    if run.stopper.best_epoch != len(history):  # the last epoch's weights are not the best ones
        model.load_state_dict(run.best_state)
    return TrainOutcome(
        history=history,
        best_epoch=run.stopper.best_epoch,
        epochs_run=len(history),
        stopped_early=len(history) < params.epochs,
        best_state=run.best_state,
    )


@dataclass
class _Run:
    """The train loop's state: what a checkpoint holds and a resumed run starts from."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    stopper: EarlyStopping
    shuffle_gen: torch.Generator
    dropout_gen: torch.Generator
    sink: CheckpointSink | None
    fingerprint: str
    scheduler: Scheduler | None = None
    epoch: int = 1  # the epoch in progress (1-based)
    batch: int = 0  # batches of it done
    steps_done: int = 0
    finished: bool = False  # the last epoch is done (or early stopping ended the run)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    # The batch-order generator's state at the start of `epoch`, before its permutation: a run
    # resumed within the epoch draws that same permutation again.
    epoch_shuffle_state: torch.Tensor | None = None
    stats: _RunningStats | None = None
    resumed_stats: tuple[float, int, int] = (0.0, 0, 0)  # loss_sum, correct, rows

    def take_stats(
        self, y_epoch: torch.Tensor, objective: Objective | None = None
    ) -> _RunningStats:
        self.stats = _RunningStats(y_epoch, objective)
        loss_sum, correct, rows = self.resumed_stats
        self.stats.loss_sum, self.stats.correct, self.stats.folded_rows = loss_sum, correct, rows
        self.resumed_stats = (0.0, 0, 0)
        return self.stats

    def end_epoch(self, *, finished: bool) -> None:
        self.epoch, self.batch, self.stats, self.finished = self.epoch + 1, 0, None, finished

    def checkpoint(self) -> None:
        if self.sink is None:
            return
        stats = (0.0, 0, 0)
        if self.stats is not None:
            self.stats.fold()  # the sums are per batch, in order: folding now changes nothing
            stats = (self.stats.loss_sum, self.stats.correct, self.stats.folded_rows)
        mid_epoch = self.batch > 0
        stopper = self.stopper
        payload = {
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "batch": self.batch,
            "steps_done": self.steps_done,
            "finished": self.finished,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "early_stopping": {
                "best": stopper.best,
                "best_epoch": stopper.best_epoch,
                "epochs_without_improvement": stopper.epochs_without_improvement,
            },
            "best_state": self.best_state,
            "history": self.history,
            "stats": list(stats),
            "rng": {
                "shuffle": self.epoch_shuffle_state if mid_epoch else self.shuffle_gen.get_state(),
                "dropout": self.dropout_gen.get_state(),
                "global": global_rng_states(),
            },
        }
        self.sink.save(encode(payload), Position(self.epoch, self.batch))

    def restore(self, payload: dict[str, Any]) -> None:
        if payload["fingerprint"] != self.fingerprint:
            raise CheckpointMismatch(
                "the checkpoint was written by a run with other data, parameters or model; "
                "it cannot be continued"
            )
        self.epoch, self.batch = int(payload["epoch"]), int(payload["batch"])
        self.steps_done, self.finished = int(payload["steps_done"]), bool(payload["finished"])
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scheduler is not None and payload["scheduler"] is not None:
            self.scheduler.load_state_dict(payload["scheduler"])
        early = payload["early_stopping"]
        self.stopper.best, self.stopper.best_epoch = early["best"], int(early["best_epoch"])
        self.stopper.epochs_without_improvement = int(early["epochs_without_improvement"])
        self.best_state = dict(payload["best_state"])
        self.history = list(payload["history"])
        loss_sum, correct, rows = payload["stats"]
        self.resumed_stats = (float(loss_sum), int(correct), int(rows))
        rng = payload["rng"]
        self.shuffle_gen.set_state(rng["shuffle"])
        self.dropout_gen.set_state(rng["dropout"])
        restore_global_rng_states(rng["global"])


def _shapes(model: nn.Module) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple((name, tuple(t.shape)) for name, t in model.state_dict().items())


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A deep copy of the weights (tensor clones: copy.deepcopy is ~20x slower here)."""
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def _step_scheduler(scheduler: Scheduler | None, val_loss: float) -> None:
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()


def _as_tensor(
    a: np.ndarray | torch.Tensor, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device=device, dtype=dtype)
