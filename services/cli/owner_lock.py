"""One embedded process per SQLite file: `ktrdr up` owns its database.

An embedded process runs the only trainer and the in-process bus of its database, and on start
it settles what a previous run left (services/cli/embedded.py `recover_orphans`). A second one on
the same file would "recover" the first one's live trainings, so it must not start at all.

The lock is an exclusive `flock` on `<database file>.lock`, held for the life of the process:
the kernel drops it when the process ends, however it ends (kill -9 included), so a stale lock
file never blocks a restart. The file names its holder (pid, host, start time) so the refusal
can say who owns the database.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import IO


class DatabaseInUse(Exception):
    """Another embedded process holds the database."""


class OwnerLock:
    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise DatabaseInUse naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 -- held until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _describe(handle.read())
            handle.close()
            raise DatabaseInUse(
                f"the database {self.path.with_suffix('')} is in use by another ktrdr process "
                f"({holder}); stop that one first, or give this one another database with "
                "KTRDR_DATABASE_URL"
            ) from None
        handle.seek(0)
        handle.truncate()
        holder_info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        handle.write(json.dumps(holder_info))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None

    def __enter__(self) -> OwnerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on {holder['host']}, since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "its pid is not recorded yet"


def sqlite_file(database_url: str) -> Path | None:
    """The file of a file-backed SQLite URL (None for other databases and in-memory SQLite)."""
    from libs.events.db import parse_url

    url = parse_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()
