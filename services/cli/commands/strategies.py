"""`ktrdr strategies list | validate`: the strategy files of this machine, and whether one would
train, checked by the very loader the trainer uses (no service needed). The service's own list
is `GET /api/v1/strategies`.

Exit codes: 0 valid (warnings, like unused sections, are printed but pass); 2 not valid or not
found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

strategies_app = typer.Typer(
    help="Strategy files: list them, check one before training it.", no_args_is_help=True
)
EXIT_INVALID = 2


@strategies_app.command("list")
def list_command(
    strategies_dir: Path | None = typer.Option(None, help="Default KTRDR_STRATEGIES_DIR."),
) -> None:
    """Every strategy in the folder: name, symbols, timeframes, description; a file that does
    not load says why."""
    from rich.markup import escape
    from rich.table import Table

    from libs.pipeline.config.strategy import load_strategy
    from services.cli.consoles import make_console
    from services.cli.local_settings import LocalSettings

    root = strategies_dir or LocalSettings().strategies_dir
    console = make_console()
    files = sorted(p for p in root.glob("*.y*ml") if p.suffix in {".yaml", ".yml"})
    if not files:
        console.print(f"no strategies in {root}")
        return
    table = Table(show_edge=False)
    for column in ("strategy", "symbols", "timeframes", "description"):
        table.add_column(column, overflow="fold")
    for path in files:
        try:
            cfg = load_strategy(path)
        except Exception as error:  # noqa: BLE001 - one broken file must not hide the others
            first = str(error).splitlines()[0]
            table.add_row(path.stem, "—", "—", f"[red]does not load:[/] {escape(first)}")
            continue
        table.add_row(
            path.stem,
            ", ".join(cfg.symbols),
            ", ".join(cfg.timeframes),
            escape(cfg.description or "—"),
        )
    console.print(table)


@strategies_app.command("validate")
def validate_command(
    strategy: str = typer.Argument(..., help="A YAML file, or a name in KTRDR_STRATEGIES_DIR."),
    strategies_dir: Path | None = typer.Option(None, help="Default KTRDR_STRATEGIES_DIR."),
) -> None:
    """Check a strategy the way the trainer will load it: every problem with its field, and
    warnings (sections training does not use) before any training starts."""
    from rich.markup import escape

    from libs.pipeline.config.errors import StrategyConfigError
    from libs.pipeline.config.strategy import load_strategy
    from libs.pipeline.pipeline import config_warnings
    from services.cli.consoles import make_console
    from services.cli.local_settings import (
        LocalSettings,
        StrategyNotFoundError,
        resolve_strategy,
    )

    console = make_console()
    errors = make_console(stderr=True)
    try:
        path = resolve_strategy(strategy, strategies_dir or LocalSettings().strategies_dir)
        cfg = load_strategy(path)
    except StrategyConfigError as error:
        errors.print(f"[bold red]invalid:[/] {escape(str(path))}")
        for problem in error.problems:
            errors.print(f"  - {escape(problem)}", soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    except (StrategyNotFoundError, ValueError, OSError) as error:
        errors.print(f"[bold red]error:[/] {escape(_one_line(error))}", soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    for warning in config_warnings(cfg):
        errors.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    console.print(
        f"[green]valid:[/] {escape(cfg.name)} ({escape(str(path))}): "
        f"{', '.join(cfg.symbols)} on {', '.join(cfg.timeframes)}",
        soft_wrap=True,
    )


def _one_line(error: Any) -> str:
    return " ".join(line.strip() for line in str(error).splitlines())


def register(app: typer.Typer) -> None:
    app.add_typer(strategies_app, name="strategies")
