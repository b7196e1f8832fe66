"""Telling a database outage from a poison event.

The projector must never ack what it has not committed, and must never dead-letter an event
just because Postgres was restarting. So when an append fails it asks: is the database down?
- errors that name a lost or refused connection (or SQLite's "database is locked") say yes;
- any other error is checked with a probe (`Stack.ping_database`, a `SELECT 1`): if the
  database does not answer, it is an outage too, whatever the error looked like.
Only an error while the database demonstrably works may be blamed on the events themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import exc as sa_exc

log = logging.getLogger("ktrdr.projector")

Probe = Callable[[], Awaitable[object]]  # raises unless the database answers; result unused
PROBE_TIMEOUT_S = 3.0


def names_an_outage(error: BaseException) -> bool:
    """True when the error itself says the connection is gone, refused or busy."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(
            current,
            (
                sa_exc.OperationalError,
                sa_exc.InterfaceError,
                sa_exc.DisconnectionError,
                sa_exc.TimeoutError,
                OSError,
                TimeoutError,
            ),
        ):
            return True
        if _is_asyncpg_connection_error(current):
            return True
        orig = getattr(current, "orig", None)  # SQLAlchemy keeps the driver's error here
        if isinstance(orig, BaseException) and id(orig) not in seen:
            current = orig
            continue
        current = current.__cause__ or current.__context__
    return False


def _is_asyncpg_connection_error(error: BaseException) -> bool:
    try:
        import asyncpg
    except ImportError:  # SQLite-only installs
        return False
    return isinstance(
        error,
        (
            asyncpg.PostgresConnectionError,
            asyncpg.CannotConnectNowError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.AdminShutdownError,
            asyncpg.exceptions.OperatorInterventionError,
        ),
    )


async def database_down(error: BaseException, probe: Probe) -> bool:
    if names_an_outage(error):
        return True
    try:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
        # arrives as the probe finishes, and a stopping projector would then retry forever.
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await probe()
    except asyncio.CancelledError:
        raise
    except Exception as probe_error:  # noqa: BLE001 - any failure of the probe means "down"
        log.debug("database probe failed: %r", probe_error)
        return True
    return False
