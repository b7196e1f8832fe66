"""`train_strategy()`: THE phase sequence every entry point trains through.

The CLI, the bus trainer and tests all call this one function with a TrainingRequest, a
Reporter and a CancellationToken. It reports `phase_started` for every name in PHASES, in order,
checks the token before each phase and after every batch, and saves nothing when cancelled:
the model folder is written only in the last phase, atomically.

Determinism: every random draw comes from generators seeded from `request.seed` (model init,
batch order, dropout, permutation importance), so the same request gives the same weights and
metrics on every path -- even with several trainings running in threads of one process.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch

from libs.pipeline import dataset
from libs.pipeline.classes import label_space
from libs.pipeline.config.strategy import StrategyConfig, apply_overrides, load_strategy
from libs.pipeline.data.ohlcv import DataError
from libs.pipeline.device import DeviceManager
from libs.pipeline.evaluation import (
    evaluate_model,
    judge,
    periods_per_year,
    predict_for_judging,
)
from libs.pipeline.lineage import build_lineage
from libs.pipeline.model import build_network
from libs.pipeline.progress import (
    PHASES,
    CancellationToken,
    Never,
    NullReporter,
    Reporter,
    TrainingCancelled,
)
from libs.pipeline.request import TrainingRequest, TrainingResult
from libs.pipeline.split import walk_forward_windows
from libs.pipeline.storage.save import save_model
from libs.pipeline.training.checkpoint import CheckpointSink
from libs.pipeline.training.loop import train_model
from libs.pipeline.training.setup import EarlyStopParams, SchedulerParams, TrainParams

T = TypeVar("T")


class _Phases:
    """Announces each phase in PHASES order; a cancelled token stops before the next phase."""

    def __init__(self, reporter: Reporter, token: CancellationToken) -> None:
        self.reporter, self.token, self.next_index = reporter, token, 0

    def run(self, name: str, message: str, work: Callable[[], T]) -> T:
        if PHASES[self.next_index] != name:  # a programming error, not a user one
            raise RuntimeError(f"phase {name!r} out of order; expected {PHASES[self.next_index]}")
        if self.token.is_cancelled():
            raise TrainingCancelled(phase=name)
        self.reporter.phase_started(name, self.next_index, len(PHASES), message)
        self.next_index += 1
        return work()


def resolve_config(request: TrainingRequest) -> StrategyConfig:
    """The strategy of a request with its symbol/timeframe/hyper-parameter overrides applied."""
    return apply_overrides(
        load_strategy(request.strategy),
        symbols=request.symbols,
        timeframes=request.timeframes,
        overrides=request.overrides or None,
    )


def model_timeframe_key(cfg: StrategyConfig) -> str:
    """The `{timeframe}` of models/{strategy}/{timeframe}_v{N}: all timeframes, base first
    (a 1h-only model and a 1h+4h model of one strategy are different models)."""
    others = [t for t in cfg.timeframes if t != cfg.base_timeframe]
    return "-".join([cfg.base_timeframe, *others])


def outputs(cfg: StrategyConfig) -> int:
    """Outputs of the model's head: one per class, or one return for regression."""
    return len(cfg.class_names) or 1


def loss_name(cfg: StrategyConfig) -> str:
    given = cfg.model.training.loss
    if given is not None:
        return given
    return "mse" if cfg.output_format == "regression" else "cross_entropy"


def architecture(cfg: StrategyConfig) -> dict[str, Any]:
    """The network's record (metadata.json): what storage.load rebuilds it from."""
    arch = cfg.model.architecture
    common = {"type": cfg.model.type, "dropout": arch.dropout, "num_classes": outputs(cfg)}
    if cfg.model.type == "mlp":
        return {
            "hidden_layers": list(arch.hidden_layers),
            "activation": arch.activation,
            **common,
        }
    return {
        **common,
        "sequence_length": arch.sequence_length,
        "hidden_size": arch.hidden_size,
        "num_layers": arch.num_layers,
    }


def describe_model(cfg: StrategyConfig, input_size: int) -> str:
    arch = cfg.model.architecture
    if cfg.model.type == "mlp":
        return f"MLP {input_size} → {arch.hidden_layers} → {outputs(cfg)}"
    return (
        f"{cfg.model.type.upper()} {arch.sequence_length} × {input_size} → "
        f"{arch.num_layers} × {arch.hidden_size} → {outputs(cfg)}"
    )


def label_message(cfg: StrategyConfig) -> str:
    labels = cfg.training.labels
    fields = {k: v for k, v in labels.to_ktrdr().items() if k != "source"}
    shown = ", ".join(
        f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items()
    )
    return f"{labels.source} ({shown})"


def train_params(cfg: StrategyConfig, seed: int) -> TrainParams:
    t = cfg.model.training
    scheduler = t.lr_scheduler
    early = t.early_stopping
    return TrainParams(
        epochs=t.epochs,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        optimizer=t.optimizer,
        weight_decay=t.weight_decay,
        scheduler=SchedulerParams(
            type=scheduler.type,
            **{k: v for k, v in scheduler.model_dump().items() if k != "type" and v is not None},
        ),
        early_stopping=(
            EarlyStopParams(early.patience, early.monitor, early.min_delta) if early else None
        ),
        gradient_clip=t.gradient_clip,
        class_weights=t.class_weights,
        seed=seed,
        num_classes=outputs(cfg),
        loss=loss_name(cfg),
        focal_gamma=2.0 if t.focal_gamma is None else t.focal_gamma,
        huber_delta=1.0 if t.huber_delta is None else t.huber_delta,
    )


def seed_global_rngs(seed: int) -> None:
    """For code we do not own that might draw from global RNGs; ours uses its own generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def config_warnings(cfg: StrategyConfig) -> list[str]:
    """What is worth saying about a strategy before it trains (entry points show it up front)."""
    if not cfg.unused_sections:
        return []
    note = (
        " (of decisions, training uses output_format, num_classes and "
        "cost_model.round_trip_cost only)"
        if "decisions" in cfg.unused_sections
        else ""
    )
    return [
        "sections not used by training (kept in the saved config): "
        + ", ".join(cfg.unused_sections)
        + note
    ]


def train_strategy(
    request: TrainingRequest,
    reporter: Reporter | None = None,
    token: CancellationToken | None = None,
    checkpoints: CheckpointSink | None = None,
) -> TrainingResult:
    """Run every phase of `request`. With `checkpoints`, the training phase continues from the
    sink's latest checkpoint and keeps new ones there (training/checkpoint.py); the phases
    before it are deterministic, so they are simply run again."""
    reporter = reporter or NullReporter()
    token = token or Never()
    started = time.perf_counter()
    cfg = resolve_config(request)
    device = DeviceManager.resolve(request.device)
    seed_global_rngs(request.seed)
    warnings = config_warnings(cfg)
    phases = _Phases(reporter, token)
    where = f"{', '.join(cfg.symbols)} {', '.join(cfg.timeframes)}"

    frames = phases.run(
        "data_loading",
        f"loading {where} from {request.data_dir}",
        lambda: dataset.load_frames(cfg, request.data_dir, request.start_date, request.end_date),
    )
    indicators = phases.run(
        "indicators",
        f"{len(cfg.indicators)} indicators",
        lambda: dataset.compute_indicators(cfg, frames, request.data_dir),
    )
    fuzzy = phases.run(
        "fuzzy",
        f"{len(cfg.fuzzy_sets)} fuzzy inputs",
        lambda: dataset.compute_fuzzy(cfg, frames, indicators),
    )
    features = phases.run(
        "features",
        f"lookback {cfg.model.features.lookback_periods}"
        + (f", windows of {cfg.sequence_length}" if cfg.sequence_length > 1 else ""),
        lambda: dataset.build_features(cfg, fuzzy),
    )
    labels = phases.run(
        "labels",
        label_message(cfg),
        lambda: dataset.build_labels(cfg, frames),
    )
    regression = cfg.output_format == "regression"
    parts = phases.run(
        "combining", where, lambda: dataset.combine(features, labels, regression=regression)
    )
    split, folds = phases.run(
        "splitting",
        "train / validation / test at common cut dates",
        lambda: _splits(cfg, parts, warnings),
    )

    record = architecture(cfg)
    input_size = int(split.X_train.shape[-1])
    model = phases.run(
        "model_creation",
        describe_model(cfg, input_size),
        lambda: build_network(
            record, input_size, generator=torch.Generator().manual_seed(request.seed)
        ),
    )
    params = train_params(cfg, request.seed)
    outcome = phases.run(
        "training",
        f"{params.epochs} epochs, {len(split.X_train)} rows, batch {params.batch_size} "
        f"on {device.type}",
        lambda: train_model(
            model,
            split.X_train,
            split.y_train,
            split.X_val,
            split.y_val,
            params,
            device=device.torch_device,
            reporter=reporter,
            token=token,
            checkpoints=checkpoints,
            w_train=split.w_train,
        ),
    )
    periods = periods_per_year(pd.concat([c["time"] for c in split.context.values()]))
    test_metrics = phases.run(
        "evaluation",
        f"{len(split.X_test)} test rows" + (f", {len(folds)} walk-forward folds" if folds else ""),
        lambda: _evaluate(
            cfg, model, split, folds, request.seed, periods, device.torch_device, token
        ),
    )
    training_metrics = {**outcome.summary(), "rows": split.rows, "split": split.report}
    capabilities = device.capabilities()
    lineage = build_lineage(
        training_id=request.training_id,
        snapshot=cfg.snapshot(),
        symbols=list(cfg.symbols),
        timeframes=list(cfg.timeframes),
        start_date=request.start_date,
        end_date=request.end_date,
        seed=request.seed,
        overrides=request.overrides,
        data_dir=request.data_dir,
        device=capabilities,
        training_metrics=training_metrics,
        test_metrics=test_metrics,
    )
    saved = phases.run(
        "saving",
        f"models/{cfg.name}",
        lambda: save_model(
            request.models_dir,
            strategy=cfg.name,
            timeframe=model_timeframe_key(cfg),
            model=model,
            config=cfg.snapshot(),
            metrics={"training": training_metrics, "test": test_metrics},
            features={
                "feature_names": list(split.feature_names),
                "lookback_periods": cfg.model.features.lookback_periods,
                "sequence_length": cfg.sequence_length,
                "output_format": cfg.output_format,
                "class_names": list(cfg.class_names),
                "scaler": split.scaler.to_dict() if split.scaler is not None else None,
                "symbols": list(cfg.symbols),
                "timeframes": list(cfg.timeframes),
                "base_timeframe": cfg.base_timeframe,
            },
            metadata={
                **_metadata(request, cfg, capabilities, input_size, record),
                "lineage": lineage,
            },
        ),
    )
    return TrainingResult(
        model=saved,
        training_metrics=training_metrics,
        test_metrics=test_metrics,
        duration_s=time.perf_counter() - started,
        device=capabilities,
        warnings=warnings,
        lineage=lineage,
    )


def _splits(
    cfg: StrategyConfig, parts: list[dataset.SymbolPart], warnings: list[str]
) -> tuple[dataset.SplitData, list[dataset.SplitData]]:
    """The split (and the walk-forward folds' splits), guarded before any training: a split
    too weak to judge a model on is an error, or a warning with `guards: warn`."""
    spec = cfg.training.data_split
    split = dataset.split_and_scale(cfg, parts)
    problems = dataset.weak_split_problems(cfg, split)
    folds = []
    if spec.walk_forward is not None:
        for number, windows in enumerate(walk_forward_windows(spec, [p.X.index for p in parts])):
            try:
                fold = dataset.split_and_scale(cfg, parts, windows)
            except DataError as exc:
                raise DataError(f"walk-forward fold {number + 1}: {exc}", exc.kind) from None
            folds.append(fold)
            problems += [
                f"walk-forward fold {number + 1}: {p}"
                for p in dataset.weak_split_problems(cfg, fold)
            ]
    if problems and spec.guards == "error":
        raise DataError(
            "the data cannot support an honest evaluation: "
            + "; ".join(problems)
            + " (use more data, change training.data_split, or set "
            "training.data_split.guards: warn to train anyway)",
            "weak_split",
        )
    warnings.extend(f"weak split: {p}" for p in problems)
    return split, folds


def block_bars(cfg: StrategyConfig, split: dataset.SplitData) -> int:
    given = cfg.training.evaluation.block_bars
    if given is not None:
        return given
    bars = split.context["test"]["time"].nunique()
    return max(1, min(cfg.training.labels.horizon_bars, bars // 5))


def _evaluate(
    cfg: StrategyConfig,
    model: torch.nn.Module,
    split: dataset.SplitData,
    folds: list[dataset.SplitData],
    seed: int,
    periods: float,
    device: torch.device,
    token: CancellationToken,
) -> dict[str, Any]:
    evaluation = cfg.training.evaluation
    metrics = evaluate_model(
        model,
        split.X_test,
        split.y_test,
        split.feature_names,
        context=split.context["test"],
        evaluation=evaluation,
        periods=periods,
        block=block_bars(cfg, split),
        seed=seed,
        device=device,
        space=label_space(cfg.class_names),
        regression=cfg.output_format == "regression",
    )
    metrics["split"] = split.report
    if folds:
        metrics["walk_forward"] = _walk_forward(cfg, folds, seed, periods, device, token)
    return metrics


def _walk_forward(
    cfg: StrategyConfig,
    folds: list[dataset.SplitData],
    seed: int,
    periods: float,
    device: torch.device,
    token: CancellationToken,
) -> dict[str, Any]:
    """Each fold trains its own model (same settings and seed) on its past and is judged on
    its test window; the figures per fold, their mean and spread, and the pooled verdict."""
    space = label_space(cfg.class_names)
    regression = cfg.output_format == "regression"
    per_fold, predictions, labels, contexts = [], [], [], []
    for number, fold in enumerate(folds, start=1):
        model = build_network(
            architecture(cfg),
            int(fold.X_train.shape[-1]),
            generator=torch.Generator().manual_seed(seed),
        )
        train_model(
            model,
            fold.X_train,
            fold.y_train,
            fold.X_val,
            fold.y_val,
            train_params(cfg, seed),
            device=device,
            reporter=NullReporter(),
            token=token,
            w_train=fold.w_train,
        )
        predicted, truth, _ = predict_for_judging(
            model, fold.X_test, fold.y_test, device, regression
        )
        m = judge(
            predicted,
            truth,
            fold.context["test"],
            cfg.training.evaluation,
            periods=periods,
            block=block_bars(cfg, fold),
            seed=seed,
            space=space,
        )
        per_fold.append(
            {
                "fold": number,
                "windows": fold.report["windows"],
                "rows": fold.report["rows"],
                "excluded": fold.report["excluded"],
                "accuracy": m["accuracy"],
                "balanced_accuracy": m["balanced_accuracy"],
                "macro_f1": m["macro_f1"],
                "sharpe": m["trading"]["sharpe"],
                "cumulative_return": m["trading"]["cumulative_return"],
                "best_baseline": m["best_baseline"],
                "bootstrap": m["bootstrap"],
                "skill": m["skill"],
                "verdict": m["verdict"],
            }
        )
        predictions.append(predicted)
        labels.append(truth)
        contexts.append(fold.context["test"])
    pooled_context = pd.concat(contexts, ignore_index=True)
    pooled = judge(
        np.concatenate(predictions),
        np.concatenate(labels),
        pooled_context,
        cfg.training.evaluation,
        periods=periods,
        block=max(1, min(cfg.training.labels.horizon_bars, pooled_context["time"].nunique() // 5))
        if cfg.training.evaluation.block_bars is None
        else cfg.training.evaluation.block_bars,
        seed=seed,
        space=space,
    )
    spread = {
        key: {
            "mean": float(np.mean([f[key] for f in per_fold])),
            "std": float(np.std([f[key] for f in per_fold])),
        }
        for key in ("accuracy", "macro_f1", "balanced_accuracy", "sharpe")
    }
    spec = cfg.training.data_split.walk_forward
    assert spec is not None
    return {
        "folds": len(folds),
        "window": spec.window,
        "per_fold": per_fold,
        "mean": spread,
        "pooled": {
            key: pooled[key]
            for key in (
                "samples",
                "accuracy",
                "balanced_accuracy",
                "macro_f1",
                "trading",
                "baselines",
                "best_baseline",
                "bootstrap",
                "skill",
                "verdict",
            )
        },
    }


def _metadata(
    request: TrainingRequest,
    cfg: StrategyConfig,
    device: dict[str, Any],
    input_size: int,
    architecture: dict[str, Any],
) -> dict[str, Any]:
    return {
        "symbols": list(cfg.symbols),
        "timeframes": list(cfg.timeframes),
        "base_timeframe": cfg.base_timeframe,
        "start_date": request.start_date,
        "end_date": request.end_date,
        "seed": request.seed,
        "device": device,
        "input_size": input_size,
        "architecture": architecture,
        "training_id": request.training_id,
    }
