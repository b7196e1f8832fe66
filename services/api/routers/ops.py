"""Operations, for admins: the trainers and their queues, and the dead letters (`ktrdr trainers`,
`ktrdr dead`, the dashboard). The JSON shapes are documented in docs/operations.md.

- GET  /api/v1/trainers: every trainer that sent a heartbeat (id, host, device, slots, the
  trainings it runs, last seen, stale) and each device request queue's depth and consumers
  (`queues` is null while the broker is unavailable: the trainers still show);
- GET  /api/v1/dead-letters: the parked messages with their cause, left in place;
- GET  /api/v1/dead-letters/{id}: one of them with its headers and body;
- POST /api/v1/dead-letters/{id}/requeue: publish it again as it first was, and remove it;
- DELETE /api/v1/dead-letters/{id}: remove it.
The dead-letter routes need the broker: 503 (Retry-After) while it is unavailable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from libs.events.bus.port import EventBus
from libs.events.bus.topology import DEVICE_CLASSES
from services.api.deps import AdminDep, PartsDep
from services.api.errors import Problem, unavailable
from services.api.trainer_presence import TRAINER_FRESH

router = APIRouter(tags=["operations"])

LetterId = Annotated[str, Path(max_length=200, description="a dead letter's id (its message id)")]


@router.get("/trainers")
async def list_trainers(parts: PartsDep, _: AdminDep) -> dict[str, Any]:
    """Every trainer that sent a heartbeat: id, host, device, slots, the trainings it runs,
    when it was last seen and whether that is too long ago (stale); and each device request
    queue with its depth and consumers (null while the broker is unavailable)."""
    now = datetime.now(UTC)
    trainers = []
    for row in await parts.store.list_trainers():
        seen = row.last_seen if row.last_seen.tzinfo else row.last_seen.replace(tzinfo=UTC)
        ago = (now - seen).total_seconds()
        trainers.append(
            {
                "trainer_id": row.trainer_id,
                "host": row.host,
                "device": (row.device or {}).get("type"),
                "device_info": row.device,
                "slots": row.concurrency,
                "running": list(row.running),
                "last_seen": seen.isoformat(),
                "seen_s_ago": round(ago, 1),
                "stale": ago > TRAINER_FRESH.total_seconds(),
            }
        )
    return {
        "trainers": trainers,
        "stale_after_s": TRAINER_FRESH.total_seconds(),
        "queues": await _queues(parts.bus),
    }


async def _queues(bus: EventBus | None) -> list[dict[str, Any]] | None:
    if bus is None or not bus.is_connected:
        return None
    names = {bus.topology.trainer_queue(device): device for device in DEVICE_CLASSES}
    try:
        stats = await bus.queue_stats(list(names))
    except Exception:  # noqa: BLE001 - the broker went away meanwhile: say so with null
        return None
    return [
        {
            "queue": s.queue,
            "device": names[s.queue],
            "messages": s.messages,
            "consumers": s.consumers,
        }
        for s in stats
    ]


def _bus(parts: Any) -> EventBus:
    bus: EventBus | None = parts.bus
    if bus is None or not bus.is_connected:
        raise unavailable("message broker")
    return bus


@router.get("/dead-letters")
async def list_dead_letters(
    parts: PartsDep, _: AdminDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """The messages parked in ktrdr.dead, oldest first, each with the reason it is there, the
    queue it died on and the routing key it was published with; they stay parked."""
    letters = await _bus(parts).dead_letters(limit)
    return {"items": [letter.summary() for letter in letters]}


@router.get("/dead-letters/{letter_id}")
async def get_dead_letter(letter_id: LetterId, parts: PartsDep, _: AdminDep) -> dict[str, Any]:
    """One dead letter: its reason, headers and body (as text, cut at 64 KiB)."""
    for letter in await _bus(parts).dead_letters(limit=10_000):
        if letter.id == letter_id:
            return letter.detail()
    raise _no_letter(letter_id)


@router.post("/dead-letters/{letter_id}/requeue")
async def requeue_dead_letter(letter_id: LetterId, parts: PartsDep, _: AdminDep) -> dict[str, Any]:
    """Publish the dead letter again to the events exchange with the routing key it was first
    published with (its consumers get it anew), then remove it from ktrdr.dead."""
    letter = await _bus(parts).take_dead_letter(letter_id, requeue=True)
    if letter is None:
        raise _no_letter(letter_id)
    return {"id": letter.id, "requeued": True, "routing_key": letter.routing_key}


@router.delete("/dead-letters/{letter_id}")
async def drop_dead_letter(letter_id: LetterId, parts: PartsDep, _: AdminDep) -> dict[str, Any]:
    """Remove the dead letter from ktrdr.dead for good."""
    letter = await _bus(parts).take_dead_letter(letter_id, requeue=False)
    if letter is None:
        raise _no_letter(letter_id)
    return {"id": letter.id, "dropped": True}


def _no_letter(letter_id: str) -> Problem:
    return Problem(404, f"dead letter {letter_id!r} not found", kind="not-found", title="Not found")
