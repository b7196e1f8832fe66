"""An EventStore view for hot read paths (SSE streams, the relay) that skips transactions.

On Postgres, a read through the store's engine is the pool's pre-ping (on asyncpg itself
BEGIN + ping + ROLLBACK), then BEGIN, the SELECT and a ROLLBACK on return. A tailing reader runs
one SELECT per commit it is told about, and a single SELECT is consistent on its own, so the
view runs it in AUTOCOMMIT: the pre-ping, then the SELECT alone. It shares the store's engine
(same pool, no extra connections) and is for reading only: writes keep going through the
store itself. On SQLite (whose BEGIN the engine emits by hand, see db.py) and for stores
without an engine the store itself is returned.
"""

from __future__ import annotations

from typing import Any, TypeVar

Store = TypeVar("Store")


def autocommit_reads(store: Store) -> Store:
    engine: Any = getattr(store, "engine", None)
    if engine is None or engine.dialect.name != "postgresql":
        return store
    from libs.events.store import EventStore

    if type(store) is not EventStore:  # a wrapper or a fake: leave it alone
        return store
    return EventStore(engine.execution_options(isolation_level="AUTOCOMMIT"))  # type: ignore[return-value]
