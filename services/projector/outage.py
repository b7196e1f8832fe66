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

from libs.events.outage import names_an_outage

log = logging.getLogger("ktrdr.projector")

__all__ = ["Probe", "database_down", "names_an_outage"]

Probe = Callable[[], Awaitable[object]]  # raises unless the database answers; result unused
PROBE_TIMEOUT_S = 3.0


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
