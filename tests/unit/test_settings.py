"""The shared settings vocabulary: URLs printed without their passwords."""

from __future__ import annotations

import pytest

from libs.settings import redacted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:s3cret@rabbit:5672/", "amqp://guest:***@rabbit:5672/"),
        (
            "postgresql+asyncpg://ktrdr:p@ss:w@db:5432/ktrdr",
            "postgresql+asyncpg://ktrdr:***@db:5432/ktrdr",
        ),
        (
            "postgresql+asyncpg://postgres@127.0.0.1/ktrdr",
            "postgresql+asyncpg://postgres@127.0.0.1/ktrdr",
        ),
        ("sqlite+aiosqlite:///./var/ktrdr.db", "sqlite+aiosqlite:///./var/ktrdr.db"),
        ("memory://", "memory://"),
    ],
)
def test_redacted_hides_only_the_password(url: str, shown: str) -> None:
    assert redacted(url) == shown
    assert "s3cret" not in redacted(url) and "p@ss" not in redacted(url)
