"""The `ktrdr` command. Each command group lives in services/cli/commands/<group>.py and exposes
`register(app)`; heavy imports (torch, the API) happen inside the commands, so `ktrdr --help`
stays fast. The CLI is the composition root of the project: it may import every service.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import typer
from typer.core import TyperOption

import services.cli.commands as commands


def _flags_without_a_type(option: TyperOption, ctx: Any) -> str | None:
    """Help shows a flag as `--watch` (or `--migrate / --no-migrate`), not `--watch <bool>`:
    a flag takes no value, so it has no type to show (Typer's help prints one since 0.2x)."""
    return None if option.is_flag else _typed(option, ctx)


_typed = TyperOption.display_type_rich
TyperOption.display_type_rich = _flags_without_a_type  # type: ignore[method-assign,assignment]

app = typer.Typer(
    name="ktrdr",
    help="Train neuro-fuzzy trading models, locally or through the event-sourced service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    importlib.import_module(f"{commands.__name__}.{module_info.name}").register(app)


def main() -> None:
    app()
