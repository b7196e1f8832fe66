"""Is this error a database outage? One answer for every process (the API's 503s, the
projector's retries).

Errors that name a lost or refused connection (or SQLite's "database is locked") say yes; the
check follows SQLAlchemy's wrapped driver error and the exception chain.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc


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
