"""`ktrdr projector`: fold the bus into the event log and the read models (settings from KTRDR_*).

Needs KTRDR_DATABASE_URL (postgresql+asyncpg://..., migrated with `ktrdr db upgrade`) and
KTRDR_BROKER_URL (amqp://...). Runs until SIGTERM / Ctrl-C.
"""

from __future__ import annotations

import typer


def projector(
    database_url: str | None = typer.Option(None, help="Overrides KTRDR_DATABASE_URL."),
    broker_url: str | None = typer.Option(None, help="Overrides KTRDR_BROKER_URL (amqp://...)."),
    batch_max: int | None = typer.Option(
        None, help="Events per commit at most (KTRDR_PROJECTOR_BATCH_MAX, default 500)."
    ),
) -> None:
    """Consume ktrdr.projector: append events to the log and fold them, in batched commits."""
    from services.cli.settings_errors import settings_or_exit
    from services.projector.service import run_projector
    from services.projector.settings import ProjectorSettings

    given = {
        "database_url": database_url,
        "broker_url": broker_url,
        "projector_batch_max": batch_max,
    }
    settings = settings_or_exit(ProjectorSettings, given)
    raise typer.Exit(run_projector(settings))


def register(app: typer.Typer) -> None:
    app.command("projector")(projector)
