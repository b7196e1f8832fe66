"""`ktrdr watch`'s display: rich progress bars for phase, epoch and batch, plus one line per
milestone (start, each phase, each epoch, the outcome) so a non-terminal log still tells the
story. Exit codes: 0 completed, 1 failed, 130 cancelled (what a Ctrl-C'd local run gives), and
EXIT_DETACHED when the user stops watching (Ctrl-C): the training itself goes on.

Once the training has ended the bars agree with the outcome: no ETA and no batch bar; the phase
counter reads like the log lines ("phase 9/11" is the ninth phase, begun); a training that
stopped early says at which epoch and which epoch was best.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from libs.events.catalog import Cancelled, Completed, Failed
from libs.events.codec import from_view

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 130
EXIT_DETACHED = 4  # stopped watching; the training runs on (not 130: nothing was cancelled)
EXIT_CODES = {
    Completed.TYPE: EXIT_COMPLETED,
    Failed.TYPE: EXIT_FAILED,
    Cancelled.TYPE: EXIT_CANCELLED,
}


class RemainingUntilEnded(TimeRemainingColumn):
    """The time left, until the training has ended (then nothing: no ETA on a finished bar)."""

    def render(self, task: Task) -> Text:
        if task.fields.get("ended"):
            return Text("")
        return super().render(task)


class WatchDisplay:
    def __init__(self, console: Console, training_id: str) -> None:
        self.console = console
        self.training_id = training_id
        self.progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            RemainingUntilEnded(),
            console=console,
            transient=False,
        )
        add = self.progress.add_task
        self.phase = add("phase", total=None, info="waiting for a trainer", ended=False)
        self.epoch = add("epoch", total=None, info="", visible=False, ended=False)
        self.batch = add("batch", total=None, info="", visible=False, ended=False)
        self.outcome: str | None = None
        self.last_epoch: int | None = None  # the last completed epoch
        self.total_epochs: int | None = None
        self.best_epoch: int | None = None

    def __enter__(self) -> WatchDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def log(self, text: str) -> None:
        self.progress.console.print(text)

    def reconnecting(self, last: int, reason: str) -> None:
        self.log(f"[yellow]connection lost ({reason}); resuming after event {last}[/]")

    def detached(self) -> None:
        """The user stopped watching (Ctrl-C): say that the training goes on."""
        self.log(
            f"[yellow]stopped watching; training {self.training_id} continues on the server[/] "
            f"(`ktrdr watch {self.training_id}` follows it again, "
            f"`ktrdr cancel {self.training_id}` stops it)"
        )

    def show(self, kind: str, data: dict[str, Any]) -> None:
        """Update the bars for `kind` and print its summary line; an event type with no method
        of its own below (a new one, say) is printed as its catalog summary."""
        line = _summary(kind, data)
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(data, line)
        else:
            self.log(line)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.outcome or "", EXIT_FAILED)

    # --- events with a view of their own ----------------------------------------------------
    # Each gets the event's JSON and its one-line summary from the catalog.
    def _on_CancelRequested(self, d: dict[str, Any], line: str) -> None:  # noqa: N802
        self.log(f"[yellow]{line}[/]")

    def _on_Started(self, d: dict[str, Any], line: str) -> None:  # noqa: N802
        self.log(line)
        self.progress.update(self.phase, completed=0, info="")
        self.progress.update(self.epoch, completed=0, visible=False)
        self.progress.update(self.batch, completed=0, visible=False)

    def _on_PhaseStarted(self, d: dict[str, Any], line: str) -> None:  # noqa: N802
        # Counted like the line ("phase 9/11: training"): phases begun, this one included.
        self.progress.update(
            self.phase, total=d["total_phases"], completed=d["index"] + 1, info=d["phase"]
        )
        self.log(line)

    def _on_BatchProgress(self, d: dict[str, Any], line: str) -> None:  # noqa: N802
        self.progress.update(
            self.epoch, total=d["total_epochs"], completed=d["epoch"] - 1, visible=True
        )
        eta = f" eta {d['eta_s']:.0f}s" if d.get("eta_s") is not None else ""
        self.progress.update(
            self.batch,
            total=d["total_batches"],
            completed=d["batch"],
            visible=True,
            info=f"loss {_figure(d.get('running_loss'), '.4f')} "
            f"acc {_figure(d.get('running_accuracy'), '.3f')}{eta}",
        )

    def _on_EpochCompleted(self, d: dict[str, Any], line: str) -> None:  # noqa: N802
        self.last_epoch, self.total_epochs = d["epoch"], d["total_epochs"]
        self.best_epoch = d.get("best_epoch")
        self.progress.update(
            self.epoch,
            total=d["total_epochs"],
            completed=d["epoch"],
            visible=True,
            info=f"val loss {d['val_loss']:.4f} acc {d['val_accuracy']:.3f}",
        )
        self.log(line)

    def _on_Completed(self, d: dict[str, Any], line: str) -> None:  # noqa: N802
        self.outcome = Completed.TYPE
        self.progress.update(
            self.phase, completed=self.progress.tasks[self.phase].total or 0, info="done"
        )
        if self.last_epoch is not None:
            epochs = self.last_epoch
            early = self.total_epochs is not None and epochs < self.total_epochs
            best = f", best {self.best_epoch}" if self.best_epoch is not None else ""
            info = (
                f"stopped early at epoch {epochs} of {self.total_epochs}{best}"
                if early
                else f"all {epochs} epochs{best}"
            )
            # A bar of the epochs that ran, full: the ones never run were not skipped work.
            self.progress.update(self.epoch, total=epochs, completed=epochs, info=info)
        self._end()
        self.log(f"[green]{line}[/]")

    def _on_Failed(self, d: dict[str, Any], line: str) -> None:  # noqa: N802
        self.outcome = Failed.TYPE
        self._end()
        self.log(f"[red]{line}[/]")

    def _on_Cancelled(self, d: dict[str, Any], line: str) -> None:  # noqa: N802
        self.outcome = Cancelled.TYPE
        self._end()
        self.log(f"[yellow]{line}[/]")

    def _end(self) -> None:
        """The training is over: no ETA anywhere, and no batch bar left half full."""
        self.progress.update(self.batch, visible=False)
        for task in (self.phase, self.epoch, self.batch):
            self.progress.update(task, ended=True)


def _summary(kind: str, data: dict[str, Any]) -> str:
    """The catalog's one-line summary of the event; its type alone if the JSON does not decode
    (an event of a newer schema than this client knows)."""
    try:
        return from_view(data).summary()
    except ValueError:
        return kind


def _figure(value: float | None, spec: str) -> str:
    """A running figure, or "?" while it is unknown (before the epoch's first fold)."""
    return "?" if value is None else format(value, spec)
