"""Settings built from command-line options over KTRDR_* variables, with a clean exit when they
do not validate: one `error: FIELD: why` line per problem and exit code 2 (a usage error),
never a traceback."""

from __future__ import annotations

from typing import Any, TypeVar

import typer
from pydantic import ValidationError

S = TypeVar("S")


def report_invalid(error: ValidationError, *, as_env: bool = False) -> None:
    """Print each problem; `as_env` names the variable (KTRDR_PORT) instead of the field."""
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "settings"
        name = f"KTRDR_{field.upper()}" if as_env else field
        typer.secho(f"error: {name}: {problem['msg']}", fg="red", err=True)


def settings_or_exit(settings_class: type[S], given: dict[str, Any]) -> S:
    """`settings_class(**given)` without the options left unset (None), so KTRDR_* fill them."""
    try:
        return settings_class(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as error:
        report_invalid(error)
        raise typer.Exit(2) from None
