"""Commit notifications (see port.py): the port, the in-process and the Postgres notifier.

`make_notifier(database_url)` is the one place that picks the notifier for a database; the
adapters are imported on demand (asyncpg only where Postgres is used).
"""

from __future__ import annotations

from typing import Any

from libs.events.db import parse_url
from libs.events.notify.port import DEFAULT_CHANNEL, Notifier


def make_notifier(url: str, *, channel: str = DEFAULT_CHANNEL, **kwargs: Any) -> Notifier:
    """The notifier for a database URL: LISTEN/NOTIFY on Postgres (across processes),
    in-process signalling by the store on SQLite. The URL is checked like the engine's
    (`db.parse_url`). A PostgresNotifier must be started (`await notifier.start()`)."""
    if parse_url(url).get_backend_name() == "postgresql":
        from libs.events.notify.postgres import PostgresNotifier

        return PostgresNotifier(url, channel=channel, **kwargs)
    from libs.events.notify.inprocess import InProcessNotifier

    return InProcessNotifier()
