"""`ktrdr train STRATEGY`: train locally, in this process, through the same `train_strategy()`
the service uses. Ctrl-C stops cleanly after the current batch (exit 130, nothing saved); a
second Ctrl-C aborts at once. Bad strategies or data: one red line, exit 2."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from services.cli.devices import DeviceClass, local_device

EXIT_USAGE = 2
EXIT_CANCELLED = 130  # 128 + SIGINT, what shells report for a Ctrl-C'd command


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise typer.BadParameter("give at least one value, comma-separated")
    return items


def train(
    strategy: str = typer.Argument(..., help="A YAML file, or a name in KTRDR_STRATEGIES_DIR."),
    symbols: str | None = typer.Option(None, help="Comma-separated symbols (override)."),
    timeframes: str | None = typer.Option(None, help="Comma-separated timeframes, e.g. 1h,4h."),
    start: str | None = typer.Option(None, help="First date (ISO, UTC, inclusive)."),
    end: str | None = typer.Option(None, help="Last date (ISO, UTC, inclusive)."),
    epochs: int | None = typer.Option(None, min=1, help="Override model.training.epochs."),
    batch_size: int | None = typer.Option(None, min=1, help="Override model.training.batch_size."),
    learning_rate: float | None = typer.Option(None, min=0.0, help="Override learning_rate."),
    seed: int = typer.Option(42, help="Seed: the same seed gives the same model."),
    device: DeviceClass | None = typer.Option(
        None, help="any (CUDA, else MPS, else CPU) or one device; default KTRDR_DEVICE."
    ),
    models_dir: Path | None = typer.Option(None, help="Default KTRDR_MODELS_DIR."),
    data_dir: Path | None = typer.Option(None, help="Default KTRDR_DATA_DIR."),
) -> None:
    """Train a model from a strategy file and save it under models/."""
    from rich.markup import escape

    from libs.pipeline.config.errors import StrategyConfigError
    from libs.pipeline.config.strategy import load_strategy
    from libs.pipeline.data.ohlcv import DataError
    from libs.pipeline.device import DeviceError, configure_threads
    from libs.pipeline.pipeline import config_warnings, train_strategy
    from libs.pipeline.progress import CancelFlag, TrainingCancelled
    from libs.pipeline.request import TrainingRequest
    from services.cli.consoles import make_console
    from services.cli.local_settings import LocalSettings, StrategyNotFoundError, resolve_strategy
    from services.cli.train_progress import ConsoleReporter, print_summary

    console = make_console()
    errors = make_console(stderr=True)
    settings = LocalSettings()
    overrides = {
        key: value
        for key, value in (
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("learning_rate", learning_rate),
        )
        if value is not None
    }
    flag = CancelFlag()

    def on_sigint(signum: int, frame: object) -> None:
        if flag.is_cancelled():
            raise KeyboardInterrupt  # second Ctrl-C: stop now (a save in progress cleans up)
        flag.cancel()

    try:
        path = resolve_strategy(strategy, settings.strategies_dir)
        loaded = load_strategy(path)
        said = config_warnings(loaded)
        for warning in said:  # before the training, while there is still time to stop it
            errors.print(f"[yellow]warning:[/] {escape(warning)}")
        request = TrainingRequest(
            strategy=loaded.snapshot(),
            data_dir=data_dir or settings.data_dir,
            models_dir=models_dir or settings.models_dir,
            symbols=_split(symbols),
            timeframes=_split(timeframes),
            start_date=start,
            end_date=end,
            overrides=overrides,
            seed=seed,
            device=local_device(device) if device else settings.device,
        )
        configure_threads()
        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            with ConsoleReporter(console) as reporter:
                result = train_strategy(request, reporter, flag)
        finally:
            signal.signal(signal.SIGINT, previous)
    except (StrategyConfigError, DataError, DeviceError, StrategyNotFoundError) as e:
        message = " ".join(line.strip() for line in str(e).splitlines())
        errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    except TrainingCancelled as e:
        where = e.phase + (f", epoch {e.epoch}" if e.epoch else "")
        errors.print(f"[yellow]cancelled during {where}; nothing was saved[/]")
        raise typer.Exit(EXIT_CANCELLED) from None
    except KeyboardInterrupt:
        errors.print("[yellow]aborted; nothing was saved[/]")
        raise typer.Exit(EXIT_CANCELLED) from None
    for warning in result.warnings:
        if warning not in said:
            errors.print(f"[yellow]warning:[/] {escape(warning)}")
    print_summary(console, result)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
