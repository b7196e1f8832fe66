"""Is anyone there to train it? A request for a device no live trainer serves waits in its
queue; the API accepts it (a trainer may be starting) but says so in the 202's warnings.
Liveness comes from the `trainers` read model (TrainerHeartbeat)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

TRAINER_FRESH = timedelta(minutes=2)  # a heartbeat newer than this: the trainer is alive


async def trainer_warnings(store: Any, device: str) -> list[str]:
    seen_after = datetime.now(UTC) - TRAINER_FRESH
    trainers = [t for t in await store.list_trainers() if _aware(t.last_seen) >= seen_after]
    if device == "any":
        return (
            []
            if trainers
            else [
                "no trainer has sent a heartbeat in the last "
                f"{TRAINER_FRESH.seconds // 60} minutes; the training "
                "stays queued until one runs"
            ]
        )
    if any((t.device or {}).get("type") == device for t in trainers):
        return []
    return [
        f"no {device} trainer has sent a heartbeat in the last "
        f"{TRAINER_FRESH.seconds // 60} minutes; the training stays queued until one runs"
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
