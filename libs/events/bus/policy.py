"""The consumer failure policy, one function both adapters call for every delivery.

    handler returns         → ACK           (the handler's work is committed; ack after it)
    handler raises          → REQUEUE       (counted in x-delivery-count; the consumer goes on)
      ... on the last try   → PARK          (the queue's delivery limit reached: retrying more
                                             cannot help)
    handler raises Reject   → PARK          (the handler says it can never be handled)
    body too large or not   → PARK          (by the one queue that parks bad bodies: the
    an event                                 projector's, which every event reaches; the other
                                             queues' copies are dropped with a warning, so a
                                             bad message lands in ktrdr.dead once)
    handler cancelled       → REQUEUE, and the cancellation propagates (stop() or shutdown)

PARK = the consumer publishes a copy to the dead-letter exchange with the REASON in its headers
(`x-ktrdr-reason`, `x-ktrdr-reason-kind`, the queue and routing key it came from), waits for the
broker's confirm, then acks the original. A broker's own dead-lettering (reject, delivery limit)
can carry no reason of ours. If the copy cannot be published, the message is rejected instead
and the broker dead-letters it (reason lost, message kept). The broker's delivery limit stays
the safety net for consumers that crash rather than raise.

Nothing is dropped silently: every non-ACK outcome is logged. On the control stream (no requeue,
no dead-lettering) a failure is logged once and the stream moves on: `settle_best_effort`
always answers ACK (the projector parks its own copy of a bad message).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from libs import metrics
from libs.events.bus.messages import MAX_EVENT_BYTES, RawMessage
from libs.events.bus.port import Delivery, HandBack, Handler, Reject

log = logging.getLogger("ktrdr.bus")

# Headers of a parked message (what `ktrdr dead` shows).
REASON_HEADER = "x-ktrdr-reason"
REASON_KIND_HEADER = "x-ktrdr-reason-kind"
QUEUE_HEADER = "x-ktrdr-queue"
ROUTING_KEY_HEADER = "x-ktrdr-routing-key"
DEAD_AT_HEADER = "x-ktrdr-dead-at"
MAX_REASON_CHARS = 2000

# Why a message was parked (the `reason` label of ktrdr_dead_letters_total).
UNDECODABLE = "undecodable"
TOO_LARGE = "too_large"
REJECTED = "rejected"
HANDLER_FAILED = "handler_failed"


class Outcome(Enum):
    ACK = "ack"
    REQUEUE = "requeue"
    DEAD_LETTER = "dead_letter"


Park = Callable[[RawMessage, dict[str, Any]], Awaitable[None]]  # (message, reason headers)


@dataclass(frozen=True)
class DeadLettering:
    """How a queue's consumer parks messages (see the module docstring)."""

    park: Park  # publishes the copy to the dead exchange; raises unless confirmed
    delivery_limit: int | None  # the queue's; the try after which a failure is final
    parks_bad_bodies: bool  # only the queue every event reaches parks undecodable ones


def reason_headers(raw: RawMessage, kind: str, reason: str) -> dict[str, Any]:
    return {
        REASON_HEADER: reason[:MAX_REASON_CHARS],
        REASON_KIND_HEADER: kind,
        QUEUE_HEADER: raw.queue,
        ROUTING_KEY_HEADER: raw.routing_key,
        DEAD_AT_HEADER: datetime.now(UTC).isoformat(),
    }


def decode(raw: RawMessage) -> tuple[Delivery | None, str, str]:
    """(the delivery, "", "") or (None, reason kind, reason) for a body that is no event."""
    if len(raw.body) > MAX_EVENT_BYTES:
        return None, TOO_LARGE, f"{len(raw.body)} bytes, over the limit of {MAX_EVENT_BYTES}"
    try:
        return raw.to_delivery(), "", ""
    except Exception as error:  # bad JSON, unknown type, schema error: all mean a bad body
        return None, UNDECODABLE, f"not an event: {_first_line(error)}"


async def settle(raw: RawMessage, handler: Handler, dead: DeadLettering | None = None) -> Outcome:
    """Decode `raw`, run `handler`, say what to do with the message (parking it first when
    that is the answer and `dead` says how)."""
    delivery, kind, reason = decode(raw)
    if delivery is None:
        if dead is not None and not dead.parks_bad_bodies:
            log.warning(
                "dropping a bad message on %s (routing key %r, message_id %r): %s; the "
                "projector's copy is dead-lettered",
                raw.queue,
                raw.routing_key,
                raw.message_id,
                reason,
            )
            return Outcome.ACK
        return await _park(raw, dead, kind, reason)
    try:
        await handler(delivery)
    except asyncio.CancelledError:
        raise
    except Reject as rejected:
        return await _park(raw, dead, rejected.kind, rejected.reason)
    except Exception as error:
        tries = delivery.delivery_count + 1
        handed_back = isinstance(error, HandBack)
        limit = dead.delivery_limit if dead is not None else None
        if limit is not None and delivery.delivery_count >= limit:
            why = f"its handler failed after {tries} deliveries (last: {_first_line(error)})"
            log.error("giving up on %s %s", delivery.event.type, delivery.event.event_id)
            return await _park(raw, dead, HANDLER_FAILED, why)
        log.log(
            logging.INFO if handed_back else logging.ERROR,
            "%s on %s for %s %s (delivery %d)%s",
            "handed back" if handed_back else "handler failed",
            raw.queue,
            delivery.event.type,
            delivery.event.event_id,
            tries,
            f": {error}" if handed_back else "",
            exc_info=not handed_back,
        )
        return Outcome.REQUEUE
    return Outcome.ACK


async def _park(raw: RawMessage, dead: DeadLettering | None, kind: str, reason: str) -> Outcome:
    where = f"{raw.queue} (routing key {raw.routing_key!r}, message_id {raw.message_id!r})"
    if dead is None:  # no way to record why: the broker dead-letters it
        log.error("dead-lettering a message from %s: %s", where, reason)
        return Outcome.DEAD_LETTER
    try:
        await dead.park(raw, reason_headers(raw, kind, reason))
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001 - the broker's own dead-lettering keeps it
        log.error("cannot park a message from %s (%r); rejecting it: %s", where, error, reason)
        return Outcome.DEAD_LETTER
    log.warning("dead-lettered a message from %s: %s", where, reason)
    metrics.DEAD_LETTERS.labels(queue=raw.queue, reason=kind).inc()
    return Outcome.ACK


async def settle_best_effort(raw: RawMessage, handler: Handler) -> Outcome:
    """For the control stream and taps, which cannot requeue or dead-letter: a bad body is
    skipped (logged at INFO: every reader of a replayed stream meets it again, and the
    projector has parked its own copy with the reason); a handler failure is logged and the
    stream moves on."""
    delivery, _, reason = decode(raw)
    if delivery is None:
        log.info("skipping a bad message %r on %s: %s", raw.message_id, raw.queue, reason)
        return Outcome.ACK
    try:
        await handler(delivery)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("skipping message %r on %s: its handler failed", raw.message_id, raw.queue)
    return Outcome.ACK


def _first_line(error: BaseException) -> str:
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
