"""`ktrdr up`: the whole service (api + projector + relay + one trainer) in one process.

No configuration needed: SQLite at ./var/ktrdr.db (migrated on start) and the in-process bus,
listening on 127.0.0.1:8000. KTRDR_DATABASE_URL + KTRDR_BROKER_URL put it on Postgres + RabbitMQ
(run `ktrdr db upgrade` first). --host/--port win over KTRDR_HOST/KTRDR_PORT.
"""

from __future__ import annotations

import typer

from services.cli import server_options


def up(
    host: str | None = server_options.HOST,
    port: int | None = server_options.PORT,
    migrate: bool | None = server_options.MIGRATE,
    log_level: str = typer.Option("info", help="Log level (debug, info, warning, error)."),
    access_log: bool = typer.Option(False, help="Log every HTTP request."),
) -> None:
    """Run the API, the projector, the outbox relay and a trainer in this one process."""
    from pydantic import ValidationError

    from services.cli.embedded import StartupError, UpOptions, run_up
    from services.cli.settings_errors import report_invalid

    options = UpOptions(
        host=host, port=port, migrate=migrate, log_level=log_level, access_log=access_log
    )
    try:
        code = run_up(options, announce=lambda line: typer.secho(line, fg="green"))
    except StartupError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None
    except ValidationError as error:
        report_invalid(error, as_env=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("up")(up)
