"""`ktrdr strategies list | validate | migrate`: the strategy files of this machine, whether one
would train, checked by the very loader the trainer uses (no service needed), and the v3 form
of a v1/v2 file. The service's own list is `GET /api/v1/strategies`.

Exit codes: 0 valid (warnings, like unused sections, are printed but pass); 2 not valid or not
found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

strategies_app = typer.Typer(
    help="Strategy files: list them, check one before training it, migrate one to v3.",
    no_args_is_help=True,
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


def dump_v3(document: dict[str, Any]) -> str:
    """YAML as a researcher would write it: sections in order, short lists of numbers and
    triangular sets ([a, b, c]) on one line."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
        flat = all(not isinstance(v, dict | list) for v in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)

    Dumper.add_representer(list, represent_list)

    def shorthand(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("type") == "triangular" and set(value) == {"type", "parameters"}:
                return list(value["parameters"])
            return {k: shorthand(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shorthand(v) for v in value]
        return value

    document = {**document, "fuzzy_sets": shorthand(document.get("fuzzy_sets", {}))}
    text: str = yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=96)
    return text


@strategies_app.command("migrate")
def migrate_command(
    file: Path = typer.Argument(..., help="A v1 (`data:`) or v2 (`training_data:`) strategy."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the v3 file here (default: print it)."
    ),
    in_place: bool = typer.Option(False, "--in-place", help="Replace FILE with its v3 form."),
) -> None:
    """Print (or write) the v3 form of FILE: every setting at its v3 place, hyper-parameters
    under training.*, model.features' scaling as one normalization per nn_input, so the
    migrated file trains the same weights."""
    from rich.markup import escape

    from libs.pipeline.config.errors import StrategyConfigError
    from libs.pipeline.config.strategy import load_strategy
    from libs.pipeline.migrate import migrate
    from services.cli.consoles import make_console

    errors = make_console(stderr=True)

    def fail(message: str) -> NoReturn:
        errors.print(f"[bold red]error:[/] {escape(_one_line(message))}", soft_wrap=True)
        raise typer.Exit(EXIT_INVALID)

    if output is not None and in_place:
        fail("--output and --in-place: give one")
    try:
        cfg = load_strategy(file)
    except StrategyConfigError as exc:
        fail(f"{file}: {exc}")
    if cfg.version is not None and cfg.version.startswith("3"):
        fail(f"{file}: already format v3 (version {cfg.version})")
    text = dump_v3(migrate(cfg))
    target = file if in_place else output
    if target is None:
        typer.echo(text, nl=False)
        return
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror}")
    typer.echo(f"wrote the v3 form of {file} to {target}")


def _one_line(error: Any) -> str:
    return " ".join(line.strip() for line in str(error).splitlines())


def register(app: typer.Typer) -> None:
    app.add_typer(strategies_app, name="strategies")
