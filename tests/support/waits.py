"""Waiting on the store's commit notifications instead of sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from libs.events.notify.port import Notifier


async def until_committed(
    notifier: Notifier,
    check: Callable[[], Awaitable[Any]],
    *,
    within_s: float,
    recheck_s: float | None = None,
) -> Any:
    """Re-evaluate the async `check` after every notified commit until it returns something
    truthy; AssertionError after `within_s`. `recheck_s` bounds each wait, for checks whose
    truth can change without a notification (e.g. a notifier that may miss one on reconnect)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        seen = notifier.last_position
        result = await check()
        if result:
            return result
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"condition not met within {within_s}s")
        wait = remaining if recheck_s is None else min(remaining, recheck_s)
        await notifier.wait_for_change(seen, wait)
