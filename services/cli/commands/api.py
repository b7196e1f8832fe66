"""`ktrdr api`: the REST API + SSE as its own process, with the outbox relay running inside it.

Settings from KTRDR_* (database_url, broker_url, host, port, strategies_dir, data_dir,
models_dir, sse_keepalive_s, ...); --host / --port win over KTRDR_HOST / KTRDR_PORT. On Postgres
run `ktrdr db upgrade` first (GET /readyz says so when the schema is behind); a SQLite database
is migrated on start unless --no-migrate.
"""

from __future__ import annotations

from typing import Any

import typer

from libs.settings import redacted
from services.cli import server_options


def api(
    host: str | None = server_options.HOST,
    port: int | None = server_options.PORT,
    migrate: bool | None = server_options.MIGRATE,
    relay: bool = typer.Option(
        True, "--relay/--no-relay", help="Run the outbox relay in this process."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve the REST API and the SSE progress streams."""
    import uvicorn

    from libs.events.db import parse_url
    from libs.logs import configure_logging
    from libs.settings import LogSettings
    from services.api.app import create_app
    from services.api.server import ApiServer
    from services.api.settings import ApiSettings

    overrides: dict[str, Any] = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = ApiSettings(**overrides, run_relay=relay)
    configure_logging(LogSettings(log_level=log_level))
    try:
        sqlite = parse_url(settings.database_url).get_backend_name() == "sqlite"
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="KTRDR_DATABASE_URL") from None
    if migrate if migrate is not None else sqlite:
        from libs.events.migrate import upgrade

        upgrade(settings.database_url, keep_logging=True)
    typer.echo(
        f"ktrdr api listening on http://{settings.host}:{settings.port} "
        f"(database {redacted(settings.database_url)}, broker {redacted(settings.broker_url)})"
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=None,  # uvicorn's lines go through ours (configure_logging)
        timeout_graceful_shutdown=5,
        **settings.proxy_options(),
    )
    ApiServer(config).run()


def register(app: typer.Typer) -> None:
    app.command("api")(api)
