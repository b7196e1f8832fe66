"""`ktrdr models list` and `ktrdr models predict`: the saved models and what they say now."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

models_app = typer.Typer(help="Saved models: list them, predict with one.", no_args_is_help=True)
EXIT_USAGE = 2


@models_app.command("list")
def list_command(
    strategy: str | None = typer.Option(None, help="Only this strategy's models."),
    models_dir: Path | None = typer.Option(None, help="Default KTRDR_MODELS_DIR."),
) -> None:
    """Every model saved by `ktrdr train`: strategy, timeframe, version, created, test
    accuracy, path. (The service's models, under tenants/, are listed by the API.)"""
    from rich.table import Table

    from libs.pipeline.storage.catalog import list_models
    from services.cli.consoles import make_console
    from services.cli.local_settings import LocalSettings

    root = models_dir or LocalSettings().models_dir
    try:
        infos = list_models(root, strategy=strategy)
    except ValueError as e:
        _fail(str(e))
    console = make_console()
    if not infos:
        console.print(f"no models in {root}")
        return
    table = Table(show_edge=False)
    for column in ("strategy", "timeframe", "version", "created", "test acc", "path"):
        table.add_column(column, justify="right" if column in ("version", "test acc") else "left")
    for info in infos:
        table.add_row(
            info.strategy,
            info.timeframe,
            f"v{info.version}" + (" (latest)" if info.latest else ""),
            (info.created_at or "?")[:19].replace("T", " "),
            "?" if info.test_accuracy is None else f"{info.test_accuracy:.3f}",
            str(info.path),
        )
    console.print(table)


@models_app.command("predict")
def predict_command(
    strategy: str = typer.Argument(..., help="The strategy name the model was saved under."),
    version: str = typer.Option("latest", help="A version number, or latest."),
    timeframe: str | None = typer.Option(None, help="Needed when models of several exist."),
    symbol: str | None = typer.Option(None, help="Default: the model's first symbol."),
    bars: int = typer.Option(10, min=1, help="How many of the latest bars to predict."),
    models_dir: Path | None = typer.Option(None, help="Default KTRDR_MODELS_DIR."),
    data_dir: Path | None = typer.Option(None, help="Default KTRDR_DATA_DIR."),
) -> None:
    """Signals of a saved model on the latest bars of a symbol."""
    from rich.table import Table

    from libs.pipeline import dataset
    from libs.pipeline.config.errors import StrategyConfigError
    from libs.pipeline.config.strategy import load_strategy
    from libs.pipeline.data.ohlcv import DataError
    from libs.pipeline.split import Scaler
    from libs.pipeline.storage.catalog import ModelNotFoundError, resolve_model_path
    from libs.pipeline.storage.layout import parse_version_dir
    from libs.pipeline.storage.load import load_model
    from services.cli.consoles import make_console
    from services.cli.local_settings import LocalSettings

    settings = LocalSettings()
    try:
        number: int | str = "latest" if version == "latest" else int(version)
    except ValueError:
        _fail(f"version: {version!r} is not a number or 'latest'")
    try:
        path = resolve_model_path(models_dir or settings.models_dir, strategy, timeframe, number)
        loaded = load_model(path)
        cfg = load_strategy(loaded.config)
        symbol = symbol or cfg.symbols[0]
        scaler = loaded.features.get("scaler")
        X, index = dataset.prediction_features(
            cfg,
            data_dir or settings.data_dir,
            symbol,
            loaded.feature_names,
            Scaler.from_dict(scaler) if scaler else None,
            last_n=bars,
        )
    except (ModelNotFoundError, StrategyConfigError, DataError, ValueError) as e:
        _fail(str(e))
    prediction = loaded.predict(X)
    _, shown = parse_version_dir(path.name) or ("", version)
    table = Table(title=f"{strategy} v{shown} on {symbol}", show_edge=False)
    for column in ("timestamp", "signal", "P(BUY)", "P(HOLD)", "P(SELL)"):
        table.add_column(column, justify="left" if column in ("timestamp", "signal") else "right")
    colour = {"BUY": "green", "HOLD": "white", "SELL": "red"}
    for ts, label, probs in zip(index, prediction.labels, prediction.probabilities, strict=True):
        table.add_row(ts.isoformat(), f"[{colour[label]}]{label}[/]", *(f"{p:.3f}" for p in probs))
    make_console().print(table)


def _fail(message: str) -> NoReturn:
    from rich.markup import escape

    from services.cli.consoles import make_console

    text = " ".join(line.strip() for line in message.splitlines())
    make_console(stderr=True).print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
