"""The `ktrdr` command. Each command group lives in services/cli/commands/<group>.py and exposes
`register(app)`; heavy imports (torch, the API) happen inside the commands, so `ktrdr --help`
stays fast. The CLI is the composition root of the project: it may import every service.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

import services.cli.commands as commands

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
