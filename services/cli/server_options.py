"""The options every command that serves HTTP takes (`ktrdr api`, `ktrdr up`), declared once."""

from __future__ import annotations

import typer

HOST = typer.Option(None, help="Interface to listen on (default KTRDR_HOST or 127.0.0.1).")
PORT = typer.Option(None, min=1, max=65535, help="Port (default KTRDR_PORT or 8000).")
MIGRATE = typer.Option(
    None, "--migrate/--no-migrate", help="Run `db upgrade` first (default: on SQLite only)."
)
