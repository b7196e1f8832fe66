"""Readiness checks for GET /readyz: database reachable, broker connected, schema at head.

Each check returns (ok, detail) within a timeout and never raises, so /readyz can report every
failing check at once (503 naming them) instead of dying on the first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from libs.events.bus.port import EventBus
from libs.events.migrate import SchemaStatus
from libs.events.notify.port import Notifier

if TYPE_CHECKING:
    from services.api.deps import Components

log = logging.getLogger("ktrdr.api.readiness")

CHECK_TIMEOUT_S = 3.0
Check = tuple[bool, str]


async def run_checks(parts: Components) -> dict[str, Check]:
    checks: dict[str, Callable[[], Awaitable[Check]]] = {
        "database": lambda: check_database(parts.ping_database),
        "migrations": lambda: check_migrations(parts.schema_status),
        "broker": lambda: check_broker(parts.bus),
        # Postgres: the LISTEN link that wakes SSE streams and the relay; always up in process.
        "notifications": lambda: check_listener(parts.notifier),
    }
    names = list(checks)
    results = await asyncio.gather(*(_bounded(checks[name]()) for name in names))
    return dict(zip(names, results, strict=True))


async def _bounded(check: Awaitable[Check]) -> Check:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return await check
    except TimeoutError:
        return False, f"no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # noqa: BLE001 - a check reports, it does not crash /readyz
        log.warning("readiness check failed: %s", exc)
        return False, f"{type(exc).__name__}: {exc}"


async def check_database(ping: Callable[[], Awaitable[str]]) -> Check:
    return True, await ping()


async def check_migrations(status: Callable[[], Awaitable[SchemaStatus | None]]) -> Check:
    found = await status()
    if found is None:
        return True, "in-memory store: no schema"
    return found.at_head, str(found)


async def check_broker(bus: EventBus | None) -> Check:
    if bus is None:
        return False, "no bus configured"
    kind = type(bus).__name__
    return (True, f"{kind} connected") if bus.is_connected else (False, f"{kind} not connected")


async def check_listener(notifier: Notifier) -> Check:
    kind = type(notifier).__name__
    if notifier.connected:
        return True, f"{kind} connected"
    return False, f"{kind} disconnected (reconnecting); live streams fall back to polling"
