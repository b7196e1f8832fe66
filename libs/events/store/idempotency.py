"""Idempotency keys (architecture.md §6 "Submit"): same tenant + key -> the same training, no
second event.

A store checks and records a claim atomically with its append (the SQL store inside its append
transaction, under the append lock), so concurrent requests carrying one key create exactly one
training. These are the port's types; the claims' table is `tables.idempotency_keys`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.events import catalog as ev


class IdempotencyConflict(Exception):
    """Same tenant + Idempotency-Key was used before for a different request."""

    def __init__(self, tenant: str, key: str, training_id: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} of tenant {tenant!r} was already used for training "
            f"{training_id} with a different request body"
        )
        self.tenant, self.key, self.training_id = tenant, key, training_id


@dataclass(frozen=True)
class IdempotencyClaim:
    tenant: str
    key: str
    request_hash: str  # of the request as validated; a different body under one key conflicts


@dataclass(frozen=True)
class IdempotencyRecord:
    """A claimed key as stored: the training its first request created, and that request's hash."""

    training_id: str
    request_hash: str

    def replay_for(self, claim: IdempotencyClaim) -> str:
        """This record's training when `claim` repeats its request; IdempotencyConflict if the
        body differed."""
        if self.request_hash != claim.request_hash:
            raise IdempotencyConflict(claim.tenant, claim.key, self.training_id)
        return self.training_id


def claimed_training(events: Sequence[ev.Event]) -> str:
    """The training a claim will point at: the append's one TrainingRequested."""
    requested = [e for e in events if isinstance(e, ev.TrainingRequested)]
    if len(requested) != 1 or requested[0].training_id is None:
        raise ValueError("an idempotency claim needs exactly one TrainingRequested in the append")
    return requested[0].training_id
