"""What `ktrdr train` shows while it trains and when it is done.

On a terminal: a Rich live display (phase, epoch, batch bar, running loss/accuracy, ETA) with
one line per finished epoch above it. Piped or redirected: plain, flushed lines (phases,
epochs, and a batch line every few seconds), so logs and tests can follow progress.

The reporter is called after every batch; it only stores the figures unless `refresh_s` has
passed, so the display costs the train loop next to nothing.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from libs.pipeline.progress import BatchInfo, EpochInfo, Reporter


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ConsoleReporter(Reporter):
    """A Reporter for the local CLI. Use as a context manager around train_strategy()."""

    def __init__(
        self, console: Console, *, refresh_s: float = 0.1, plain_batch_every_s: float = 5.0
    ) -> None:
        self.console = console
        self.live = console.is_terminal
        self.refresh_s = refresh_s if self.live else plain_batch_every_s
        self._last_batch = 0.0
        self._progress: Progress | None = None
        self._phase_task: TaskID | None = None
        self._batch_task: TaskID | None = None

    def __enter__(self) -> ConsoleReporter:
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                console=self.console,
                transient=True,
            )
            self._phase_task = self._progress.add_task("starting", total=11, stats="")
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    # --- Reporter ------------------------------------------------------------------------------

    def phase_started(self, phase: str, index: int, total: int, message: str) -> None:
        if self._progress is not None:
            assert self._phase_task is not None
            self._progress.update(
                self._phase_task,
                description=f"[bold]{phase}[/]",
                completed=index,
                total=total,
                stats=message,
            )
        else:
            self._print(f"[{index + 1}/{total}] {phase}: {message}")

    def batch_progress(self, info: BatchInfo) -> None:
        now = time.monotonic()
        if now - self._last_batch < self.refresh_s and info.batch != info.total_batches:
            return
        self._last_batch = now
        stats = (
            f"loss {_figure(info.loss, '.4f')} acc {_figure(info.accuracy, '.3f')} "
            f"{info.samples_per_s:,.0f} rows/s ETA {_duration(info.eta_s)}"
        )
        label = f"epoch {info.epoch}/{info.total_epochs}"
        if self._progress is None:
            self._print(f"  {label} batch {info.batch}/{info.total_batches} {stats}")
            return
        if self._batch_task is None:
            self._batch_task = self._progress.add_task(label, total=info.total_batches, stats="")
        self._progress.update(
            self._batch_task,
            description=label,
            completed=info.batch,
            total=info.total_batches,
            stats=stats,
        )

    def epoch_completed(self, info: EpochInfo) -> None:
        star = " *" if info.best_epoch == info.epoch else ""
        self._print(
            f"epoch {info.epoch}/{info.total_epochs}  "
            f"train loss {info.train_loss:.4f} acc {info.train_accuracy:.3f}  "
            f"val loss {info.val_loss:.4f} acc {info.val_accuracy:.3f}  "
            f"lr {info.learning_rate:.2g}  {info.duration_s:.1f}s{star}"
        )

    def _print(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self.console.file.flush()


def results_table(test: dict[str, Any]) -> Table:
    table = Table(title="Test set", show_edge=False)
    for column in ("class", "precision", "recall", "F1", "rows"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, m in test["per_class"].items():
        table.add_row(
            name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"])
        )
    return table


def print_summary(console: Console, result: Any) -> None:
    """The end of `ktrdr train`: the test figures against the baselines, the trading read, the
    verdict, walk-forward folds, the per-class table and the model."""
    test, training = result.test_metrics, result.training_metrics
    console.print(results_table(test))
    trading, best = test["trading"], test["best_baseline"]
    excluded = test.get("split", {}).get("excluded", {})
    dropped = ", ".join(
        f"{name} {e['unknown_label']} unknown + {e['purged']} purged"
        for name, e in excluded.items()
    )
    console.print(
        f"test accuracy [bold]{test['accuracy']:.3f}[/] on {test['samples']} rows "
        f"(balanced {test['balanced_accuracy']:.3f}, macro F1 {test['macro_f1']:.3f}); "
        f"best baseline {best['accuracy_name']} {best['accuracy']:.3f}",
        highlight=False,
    )
    if dropped:
        console.print(f"rows excluded: {dropped}", highlight=False)
    console.print(
        f"trading read ({test['cost_bps']:g} bps): return {trading['cumulative_return']:+.2%}, "
        f"Sharpe {trading['sharpe']:.2f}, max drawdown {trading['max_drawdown']:.2%}, "
        f"hit rate {trading['hit_rate']:.3f}, turnover {trading['turnover']:.3f}, "
        f"exposure {trading['exposure']:.2f}; baselines' Sharpe: "
        + ", ".join(f"{n} {b['trading']['sharpe']:.2f}" for n, b in test["baselines"].items()),
        highlight=False,
    )
    colour = "green" if test["skill"] else "red"
    console.print(f"[{colour}]{test['verdict']}[/]", highlight=False)
    walk = test.get("walk_forward")
    if walk:
        for fold in walk["per_fold"]:
            console.print(
                f"  fold {fold['fold']}: test from {fold['windows']['test']['start']}, "
                f"{fold['rows']['test']} rows, accuracy {fold['accuracy']:.3f} (best baseline "
                f"{fold['best_baseline']['accuracy']:.3f}), macro F1 {fold['macro_f1']:.3f}, "
                f"Sharpe {fold['sharpe']:.2f}",
                highlight=False,
            )
        mean = walk["mean"]
        console.print(
            f"walk-forward ({walk['folds']} folds, {walk['window']}): accuracy "
            f"{mean['accuracy']['mean']:.3f} ± {mean['accuracy']['std']:.3f}, Sharpe "
            f"{mean['sharpe']['mean']:.2f} ± {mean['sharpe']['std']:.2f}; pooled: "
            f"{walk['pooled']['verdict']}",
            highlight=False,
        )
    console.print(
        f"best epoch {training['best_epoch']} of {training['epochs_run']}"
        f"{' (early stop)' if training['stopped_early'] else ''}; "
        f"trained in {result.duration_s:.1f}s on {result.device['type']}"
    )
    top = test.get("feature_importance") or []
    if top:
        names = ", ".join(f"{f['feature']} ({f['accuracy_drop']:+.3f})" for f in top[:5])
        console.print(f"most important features: {names}", highlight=False)
    model = result.model
    console.print(
        f"[bold green]saved[/] {model.strategy} {model.timeframe} v{model.version} → {model.path}"
    )


def _figure(value: float | None, spec: str) -> str:
    """A running figure, or "?" while it is unknown (before the epoch's first fold)."""
    return "?" if value is None else format(value, spec)
