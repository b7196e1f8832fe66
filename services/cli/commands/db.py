"""`ktrdr db upgrade [REV]`, `ktrdr db downgrade REV`, `ktrdr db current`.

The database comes from KTRDR_DATABASE_URL (default: SQLite at ./var/ktrdr.db) or --database-url.
Works from any directory: alembic.ini and migrations/ are found beside the installed package.
"""

from __future__ import annotations

import typer

db_app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)

URL_OPTION = typer.Option(
    None,
    "--database-url",
    help="Overrides KTRDR_DATABASE_URL (postgresql+asyncpg://... or sqlite+aiosqlite:///...).",
)


def database_url(override: str | None) -> str:
    from libs.events.db import parse_url
    from libs.events.settings import DatabaseSettings

    url = override or DatabaseSettings().database_url
    try:
        parse_url(url)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError or our ValueError
        raise typer.BadParameter(str(exc), param_hint="KTRDR_DATABASE_URL") from None
    return url


@db_app.command()
def upgrade(
    revision: str = typer.Argument("head", help="Target revision (default: head)."),
    url: str | None = URL_OPTION,
    create: bool = typer.Option(
        False, "--create", help="Create the Postgres database first if it does not exist."
    ),
) -> None:
    """Migrate the schema up to REVISION."""
    import asyncio

    from libs.events import migrate
    from libs.events.db import DatabaseMissing, check_database
    from libs.settings import redacted

    target = database_url(url)
    try:
        if asyncio.run(check_database(target, create=create)):
            typer.echo(f"created the database of {redacted(target)}")
    except DatabaseMissing as missing:
        _fail(f"{missing}; create it with `ktrdr db upgrade --create` (or createdb)")
    except Exception as error:  # noqa: BLE001 - refused, bad password: one line, no traceback
        _fail(f"cannot connect to {redacted(target)}: {_first_line(error)}")
    migrate.upgrade(target, revision)


@db_app.command()
def downgrade(
    revision: str = typer.Argument(..., help="Target revision, e.g. base or -1."),
    url: str | None = URL_OPTION,
) -> None:
    """Migrate the schema down to REVISION."""
    from libs.events import migrate

    migrate.downgrade(database_url(url), revision)


@db_app.command()
def current(url: str | None = URL_OPTION) -> None:
    """Print the database's current revision."""
    from libs.events import migrate

    migrate.current(database_url(url))


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}"[:300]


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
