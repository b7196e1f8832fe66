"""Dead-lettered training requests become `Failed` (architecture.md §6 Run).

A TrainingRequested that no trainer could finish (its handler kept raising until the request
queue's delivery limit, or it was rejected) is dead-lettered to `ktrdr.dead`; the topology also
routes it to `ktrdr.projector.dead_requests`, which this handler consumes. It appends, in one
transaction, the request itself (a no-op duplicate when the API stored it) and a `Failed`
(source "projector", retryable=False, saying where and after how many deliveries). The relay
then publishes the Failed like any API event, so trainers see the training is over.

The Failed's event_id is derived from the request's, so a redelivered dead letter produces the
very same event and the store de-duplicates it. A training that is already over is left alone,
and so is one the log does not know (a request that never came from the API: its dead letter
stays in ktrdr.dead for an operator).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from libs.events.bus.policy import QUEUE_HEADER, REASON_HEADER
from libs.events.bus.port import Delivery
from libs.events.bus.topology import Topology
from libs.events.catalog import Event, Failed, TrainingRequested
from libs.logs import log_context

log = logging.getLogger("ktrdr.projector")

PROJECTOR_SOURCE = "projector"
DEAD_LETTERED = "DeadLettered"
_FAILED_NAMESPACE = uuid.UUID("6b747264-0000-4000-8000-646561646c74")  # "ktrd" ... "deadlt"


def failed_for(
    request: TrainingRequested,
    death: Mapping[str, Any] | None,
    topology: Topology,
    headers: Mapping[str, Any] | None = None,
) -> Failed:
    """The Failed that closes a dead-lettered request (same request → same event_id)."""
    return Failed(
        event_id=uuid.uuid5(_FAILED_NAMESPACE, str(request.event_id)),
        training_id=request.training_id,
        tenant=request.tenant,
        source=PROJECTOR_SOURCE,
        correlation_id=str(request.event_id),
        error_type=DEAD_LETTERED,
        message=describe_death(death, topology, headers),
        retryable=False,
    )


def describe_death(
    death: Mapping[str, Any] | None, topology: Topology, headers: Mapping[str, Any] | None = None
) -> str:
    recorded = (headers or {}).get(REASON_HEADER)
    if recorded:  # parked by its consumer, which said why (bus/policy.py)
        queue = (headers or {}).get(QUEUE_HEADER) or "the request queue"
        return f"the training request was dead-lettered from {queue}: {recorded}"
    if not death:
        return "the training request was dead-lettered (no x-death header); no trainer ran it"
    queue = str(death.get("queue") or "the request queue")
    reason = str(death.get("reason") or "unknown")
    if reason == "delivery_limit":
        deliveries = _delivery_limit(queue, topology) + 1
        return (
            f"the training request was dead-lettered after {deliveries} deliveries from "
            f"{queue}: every trainer that took it failed or crashed before finishing it"
        )
    if reason == "rejected":
        return f"the training request was rejected by a trainer on {queue} and dead-lettered"
    return f"the training request was dead-lettered from {queue} ({reason})"


def _delivery_limit(queue: str, topology: Topology) -> int:
    try:
        limit = topology.queue(queue).delivery_limit
    except KeyError:
        limit = None
    return topology.delivery_limit if limit is None else int(limit)


Append = Callable[[Sequence[Event]], Awaitable[Any]]
# None: the log does not know the training; else whether it is over.
IsOver = Callable[[str], Awaitable[bool | None]]


class DeadLetterHandler:
    """The bus handler for `ktrdr.projector.dead_requests` (ack after the append commits)."""

    def __init__(self, append: Append, is_over: IsOver, topology: Topology) -> None:
        self._append, self._is_over, self._topology = append, is_over, topology
        self.failed = 0  # Failed events appended by this handler

    async def handle(self, delivery: Delivery) -> None:
        event = delivery.event
        with log_context(training_id=event.training_id, tenant=event.tenant):
            await self._handle(delivery)

    async def _handle(self, delivery: Delivery) -> None:
        request = delivery.event
        if not isinstance(request, TrainingRequested) or not request.training_id:
            log.warning(
                "ignoring dead letter %s %s: not a training request", request.type, request.event_id
            )
            return
        over = await self._is_over(request.training_id)
        if over is None:  # not from the API: nothing to close (it stays in ktrdr.dead)
            log.warning(
                "dead-lettered request of %s ignored: the log does not know that training",
                request.training_id,
            )
            return
        if over:
            log.info(
                "dead-lettered request of %s ignored: the training is already over",
                request.training_id,
            )
            return
        failed = failed_for(request, delivery.death, self._topology, delivery.headers)
        await self._append([request, failed])
        self.failed += 1
        log.warning("training %s failed: %s", request.training_id, failed.message)
