"""The embedded process's owner lock on its SQLite file (services/cli/owner_lock.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.cli.owner_lock import DatabaseInUse, OwnerLock, sqlite_file


def test_a_second_owner_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    database = tmp_path / "var" / "ktrdr.db"
    with OwnerLock(database), pytest.raises(DatabaseInUse) as refused:
        OwnerLock(database).acquire()  # flock: per open file, so this process conflicts too
    message = str(refused.value)
    assert str(database) in message and f"pid {os.getpid()}" in message
    assert "KTRDR_DATABASE_URL" in message


def test_release_lets_the_next_owner_in(tmp_path: Path) -> None:
    database = tmp_path / "ktrdr.db"
    first = OwnerLock(database)
    first.acquire()
    first.release()
    with OwnerLock(database) as second:
        assert second.path.read_text().startswith("{")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///var/ktrdr.db", Path("var/ktrdr.db").resolve()),
        ("sqlite+aiosqlite:///:memory:", None),
        ("postgresql+asyncpg://u@h/db", None),
    ],
)
def test_which_databases_are_owned(url: str, expected: Path | None) -> None:
    assert sqlite_file(url) == expected
