"""Idempotency-Key handling for POST /trainings (architecture.md §6: same tenant + key → same
training).

The store arbitrates inside the append transaction (`append(..., idempotency=claim)`): a key
seen before with the same request hash replays that training, with a different hash raises
IdempotencyConflict. `earlier_training` checks the same thing up front, read-only, so a retried
request is answered without re-validating (a retry must not fail because, say, a data file
changed since the first attempt).
"""

from __future__ import annotations

import hashlib
import json

from libs import metrics
from libs.events.catalog import TrainingRequested
from libs.events.store.idempotency import IdempotencyClaim, IdempotencyConflict
from libs.events.store.port import EventStore
from services.api.errors import Problem
from services.api.schemas import SubmitTraining


def request_hash(body: SubmitTraining) -> str:
    """A hash of the request as validated (defaults filled in): `{strategy: x}` and
    `{strategy: x, seed: 42}` are the same request."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def earlier_training(store: EventStore, tenant: str, key: str, hashed: str) -> str | None:
    """The training an earlier request with this key created; a conflict if its body differed."""
    record = await store.idempotency_record(tenant, key)
    if record is None:
        return None
    try:
        return record.replay_for(IdempotencyClaim(tenant, key, hashed))
    except IdempotencyConflict as exc:
        raise conflict(exc) from None


def conflict(exc: IdempotencyConflict) -> Problem:
    return Problem(409, str(exc), kind="idempotency-conflict", title="Idempotency key reused")


async def append_request(
    store: EventStore, event: TrainingRequested, tenant: str, key: str | None, hashed: str
) -> str:
    """Append the request; with a key, claim it in the same transaction (the store decides
    races between concurrent requests with one key)."""
    training_id = event.training_id
    if training_id is None:
        raise ValueError("a TrainingRequested always names its training")
    if key is None:
        await store.append([event])
        metrics.events_appended([event])
        return training_id
    try:
        result = await store.append([event], idempotency=(tenant, key, hashed))
    except IdempotencyConflict as exc:
        raise conflict(exc) from None
    if result.replayed_training_id is None:
        metrics.events_appended([event])
    # A concurrent request with the same key won the race: answer with its training.
    return result.replayed_training_id or training_id
