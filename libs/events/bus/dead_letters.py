"""The parking lot `ktrdr.dead` as operators see it: what each dead letter is, why it is there,
and how it goes back (requeue) or away (drop). Both adapters build `DeadLetter`s with
`dead_letter_of` and requeue with `requeue_target`, so they agree on ids, reasons and routing.

A dead letter's id is its AMQP message_id (the event_id of an event); a message without one (a
raw poison body) gets a stable id from its content: `sha-` and 16 hex digits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from libs.events.bus.messages import RawMessage
from libs.events.bus.policy import (
    DEAD_AT_HEADER,
    QUEUE_HEADER,
    REASON_HEADER,
    REASON_KIND_HEADER,
    ROUTING_KEY_HEADER,
)

BROKER_REASON = "broker"  # dead-lettered by the broker itself (delivery limit, reject)
# Headers dropped when a dead letter is requeued: it starts over as a fresh message.
_DEATH_HEADERS = frozenset(
    {
        REASON_HEADER,
        REASON_KIND_HEADER,
        QUEUE_HEADER,
        ROUTING_KEY_HEADER,
        DEAD_AT_HEADER,
        "x-death",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-first-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-last-death-exchange",
        "x-delivery-count",
    }
)


@dataclass(frozen=True)
class DeadLetter:
    id: str
    type: str | None
    routing_key: str  # the one it was first published with (requeue publishes with it)
    queue: str | None  # where it died
    reason: str
    reason_kind: str  # undecodable, too_large, rejected, handler_failed, unknown_training, ...
    dead_at: str | None
    training_id: str | None
    tenant: str | None
    body: bytes
    headers: Mapping[str, Any]

    def summary(self) -> dict[str, Any]:
        """The JSON of a list item (GET /api/v1/dead-letters)."""
        return {
            "id": self.id,
            "type": self.type,
            "routing_key": self.routing_key,
            "queue": self.queue,
            "reason": self.reason,
            "reason_kind": self.reason_kind,
            "dead_at": self.dead_at,
            "training_id": self.training_id,
            "tenant": self.tenant,
            "size_bytes": len(self.body),
        }

    def detail(self, max_body_chars: int = 65_536) -> dict[str, Any]:
        """The JSON of one dead letter (GET /api/v1/dead-letters/{id}): the summary, its
        headers and its body as text (cut at `max_body_chars`)."""
        text = self.body.decode("utf-8", errors="replace")
        return {
            **self.summary(),
            "headers": {k: _jsonable(v) for k, v in self.headers.items()},
            "body": text[:max_body_chars],
            "body_truncated": len(text) > max_body_chars,
        }


def dead_letter_of(raw: RawMessage) -> DeadLetter:
    headers = raw.headers
    death = _first_death(headers)
    recorded = headers.get(REASON_HEADER)
    if recorded:
        reason, kind = str(recorded), str(headers.get(REASON_KIND_HEADER) or "rejected")
    elif death is not None:
        reason = f"dead-lettered by the broker: {death.get('reason', 'unknown')}"
        kind = BROKER_REASON
    else:
        reason, kind = "no reason recorded", BROKER_REASON
    routing_key = headers.get(ROUTING_KEY_HEADER)
    if not routing_key and death is not None:
        keys = death.get("routing-keys") or []
        routing_key = keys[0] if keys else None
    queue = headers.get(QUEUE_HEADER) or (death or {}).get("queue")
    dead_at = headers.get(DEAD_AT_HEADER) or (death or {}).get("time")
    return DeadLetter(
        id=raw.message_id or content_id(raw.body),
        type=raw.type,
        routing_key=str(routing_key or raw.routing_key),
        queue=str(queue) if queue else None,
        reason=reason,
        reason_kind=kind,
        dead_at=str(dead_at) if dead_at is not None else None,
        training_id=_str_or_none(headers.get("training_id")),
        tenant=_str_or_none(headers.get("tenant")),
        body=raw.body,
        headers=dict(headers),
    )


def content_id(body: bytes) -> str:
    return "sha-" + hashlib.sha256(body).hexdigest()[:16]


def fresh_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """A requeued message's headers: its own, without the traces of its death."""
    return {k: v for k, v in headers.items() if k not in _DEATH_HEADERS}


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any] | None:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[-1], Mapping):
        return deaths[-1]  # the oldest: where it first died
    return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        if isinstance(value, Mapping):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [_jsonable(v) for v in value]
        return str(value)
    return value
