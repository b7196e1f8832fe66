"""The consumer failure policy, one function both adapters call for every delivery.

    handler returns        → ACK          (the handler's work is committed; ack after it)
    handler raises         → REQUEUE      (the quorum queue counts it in x-delivery-count and,
                                           past x-delivery-limit, dead-letters it to ktrdr.dead;
                                           the consumer goes on with the next message)
    body cannot be decoded → DEAD_LETTER  (reject without requeue at once: retrying a bad body
                                           cannot help), logged
    handler cancelled      → REQUEUE, and the cancellation propagates (stop() or shutdown)

Nothing is dropped silently: every non-ACK outcome is logged, and every dead letter lands in
the parking-lot queue `ktrdr.dead`. On the control stream (no requeue, no dead-lettering) a
failure is logged and the stream moves on: `settle_best_effort` always answers ACK.
"""

from __future__ import annotations

import asyncio
import logging
from enum import Enum

from libs.events.bus.messages import RawMessage
from libs.events.bus.port import Handler

log = logging.getLogger("ktrdr.bus")


class Outcome(Enum):
    ACK = "ack"
    REQUEUE = "requeue"
    DEAD_LETTER = "dead_letter"


async def settle(raw: RawMessage, handler: Handler) -> Outcome:
    """Decode `raw`, run `handler`, say what to do with the message."""
    try:
        delivery = raw.to_delivery()
    except Exception as error:  # bad JSON, unknown type, schema error: all mean a bad body
        log.error(
            "dead-lettering undecodable message on %s (routing key %r, message_id %r): %s",
            raw.queue,
            raw.routing_key,
            raw.message_id,
            _first_line(error),
        )
        return Outcome.DEAD_LETTER
    try:
        await handler(delivery)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception(
            "handler failed on %s for %s %s (delivery %d)",
            raw.queue,
            delivery.event.type,
            delivery.event.event_id,
            delivery.delivery_count + 1,
        )
        return Outcome.REQUEUE
    return Outcome.ACK


async def settle_best_effort(raw: RawMessage, handler: Handler) -> Outcome:
    """For the control stream and taps, which cannot requeue or dead-letter: log a failure and
    move on."""
    outcome = await settle(raw, handler)
    if outcome is not Outcome.ACK:
        log.error("skipping message %r on %s (%s)", raw.message_id, raw.queue, outcome.value)
    return Outcome.ACK


def _first_line(error: Exception) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


async def drain(tasks: set[asyncio.Task[None]], grace_s: float | None) -> None:
    """Wait for in-flight handlers; cancel whatever still runs after `grace_s` (None: never)."""
    current = asyncio.current_task()  # a handler may stop its own subscription
    pending = {t for t in tasks if not t.done() and t is not current}
    if not pending:
        return
    _, still_running = await asyncio.wait(pending, timeout=grace_s)
    for task in still_running:
        task.cancel()
    if still_running:
        await asyncio.wait(still_running)
