"""`ktrdr data synth` (synthetic bars for benchmarks and experiments) and `ktrdr data list`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NoReturn

import typer

data_app = typer.Typer(help="Market data files: list them, synthesise more.", no_args_is_help=True)
EXIT_USAGE = 2


def _fail(message: str) -> NoReturn:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(f"[red]error:[/red] {message}")
    raise typer.Exit(EXIT_USAGE)


def _data_dir(given: Path | None) -> Path:
    from services.cli.local_settings import LocalSettings

    return given or LocalSettings().data_dir


@data_app.command("synth")
def synth_command(
    symbol: str = typer.Argument(..., help="Symbol of the file to write, e.g. SYNTH."),
    timeframe: str = typer.Option("1h", help="Bar length: 1m, 5m, 15m, 30m, 1h, 4h, 1d, ..."),
    bars: int = typer.Option(100_000, min=1, help="Number of bars."),
    seed: int = typer.Option(0, help="The same seed writes the same bars."),
    start: str = typer.Option("2020-01-01", help="Open time of the first bar (UTC)."),
    price: float = typer.Option(100.0, min=0.0, help="Opening price."),
    volatility: float = typer.Option(0.002, min=0.0, help="Std of log returns per bar."),
    out: Path | None = typer.Option(None, help="Folder to write to (default KTRDR_DATA_DIR)."),
) -> None:
    """Write {SYMBOL}_{TIMEFRAME}.csv: a seeded geometric random walk of OHLCV bars."""
    from libs.pipeline import names
    from libs.pipeline.data.synth import synth_ohlcv, write_ohlcv_csv

    if not names.SYMBOL.matches(symbol):
        _fail(f"symbol: {symbol!r} must be letters, digits, . _ - (it names a file)")
    started = time.perf_counter()
    try:
        frame = synth_ohlcv(
            bars, timeframe, seed=seed, start=start, price=price, volatility=volatility
        )
    except ValueError as exc:
        _fail(str(exc))
    path = write_ohlcv_csv(frame, _data_dir(out) / f"{symbol}_{timeframe}.csv")
    elapsed = time.perf_counter() - started
    typer.echo(
        f"wrote {bars:,} {timeframe} bars {frame.index[0].isoformat()} .. "
        f"{frame.index[-1].isoformat()} to {path} in {elapsed:.1f}s"
    )


@data_app.command("list")
def list_command(
    data_dir: Path | None = typer.Option(None, help="Default KTRDR_DATA_DIR."),
) -> None:
    """Every {SYMBOL}_{TF}.csv: bars, first and last bar, or what is wrong with it."""
    from rich.console import Console
    from rich.table import Table

    from libs.pipeline.data.ohlcv import DataError, read_ohlcv

    root = _data_dir(data_dir)
    files = sorted(root.glob("*_*.csv")) if root.is_dir() else []
    console = Console(highlight=False)
    if not files:
        console.print(f"no data files in {root}")
        return
    table = Table(show_edge=False)
    for column in ("file", "bars", "first", "last"):
        table.add_column(column, justify="right" if column == "bars" else "left")
    for path in files:
        try:
            frame = read_ohlcv(path)
        except DataError as exc:
            table.add_row(path.name, "-", f"[red]{exc}[/red]", "")
            continue
        first = frame.index[0].isoformat() if len(frame) else "-"
        last = frame.index[-1].isoformat() if len(frame) else "-"
        table.add_row(path.name, f"{len(frame):,}", first, last)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
