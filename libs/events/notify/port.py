"""Commit notifications: "the log grew to position N (training T, type X)".

They are wake-up hints for tailing readers (the relay, SSE streams); readers always re-read the
store from their own cursor, so a lost or coalesced notification costs latency, never data (a
slow poll stays the safety net). One port (this module), two implementations, and
`make_notifier(database_url)` (the package) to pick one:

- `InProcessNotifier` (inprocess.py): the store calls `publish()` after each commit (SQLite /
  embedded mode).
- `PostgresNotifier` (postgres.py): LISTENs on the channel the store `pg_notify`s inside its
  append transaction (Postgres delivers at commit, to every process); a dedicated asyncpg
  connection, re-established after a drop. `publish()` is a no-op there: delivery comes
  through LISTEN.

After a reconnect (notifications may have been missed) subscribers get a `RESYNC` notification
(position 0, type "*"): re-read from your cursor.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, NamedTuple, Protocol

DEFAULT_CHANNEL = "ktrdr_events"


class Notification(NamedTuple):
    position: int
    training_id: str | None
    type: str

    def to_json(self) -> str:
        return json.dumps(
            {"position": self.position, "training_id": self.training_id, "type": self.type}
        )

    @classmethod
    def from_json(cls, text: str) -> Notification:
        raw = json.loads(text)
        return cls(int(raw["position"]), raw.get("training_id"), str(raw["type"]))


RESYNC = Notification(0, None, "*")


class NotificationQueue(Protocol):
    """One subscriber's notifications, from the moment it subscribed. Close it when done."""

    async def get(self, timeout: float | None = None) -> Notification | None: ...  # noqa: ASYNC109

    def close(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[Notification]: ...

    async def __anext__(self) -> Notification: ...

    async def __aenter__(self) -> NotificationQueue: ...

    async def __aexit__(self, *exc: Any) -> None: ...


class Notifier(Protocol):
    """What the store signals and what tailing readers wait on (InProcessNotifier or
    PostgresNotifier; start it before use, stop it at shutdown)."""

    async def start(self, timeout: float = 10.0) -> None: ...  # noqa: ASYNC109

    async def stop(self) -> None: ...

    @property
    def connected(self) -> bool:
        """False while a LISTEN connection is down (always True in process)."""
        ...

    @property
    def last_position(self) -> int: ...

    def publish(self, notifications: Sequence[Notification]) -> None: ...

    def subscribe(self) -> NotificationQueue: ...

    async def wait_for_change(self, after_position: int, timeout: float) -> bool: ...  # noqa: ASYNC109
