"""JSON codec: events to bytes and back, upcasting on the way in."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from libs.events.catalog import ENVELOPE_FIELDS, REGISTRY, Event
from libs.events.upcasting import upcast


class UnknownEventType(ValueError):
    pass


def encode(event: Event) -> bytes:
    return event.model_dump_json().encode()


def to_dict(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json")


def from_dict(raw: dict[str, Any]) -> Event:
    """Build the current event class from a flat dict of any known schema version."""
    event_type = raw.get("type")
    cls = REGISTRY.get(event_type) if isinstance(event_type, str) else None
    if cls is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    return cls.model_validate(upcast(dict(raw), cls.SCHEMA_VERSION))


def from_view(raw: Mapping[str, Any]) -> Event:
    """Build an event from a JSON view of it that carries more than the event (e.g. an SSE
    item's `position` and `recorded_at`): keys the event's class does not declare are dropped."""
    event_type = raw.get("type")
    cls = REGISTRY.get(event_type) if isinstance(event_type, str) else None
    if cls is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    return from_dict({k: v for k, v in raw.items() if k in cls.model_fields})


def decode(body: bytes | str) -> Event:
    """Raises ValueError (json, unknown type, pydantic ValidationError) on a bad body."""
    raw = json.loads(body)
    if not isinstance(raw, dict):
        raise ValueError("event body is not a JSON object")
    return from_dict(raw)


def from_row(envelope: dict[str, Any], payload: dict[str, Any]) -> Event:
    """Rebuild an event from the store's envelope columns plus its payload column."""
    raw = {k: v for k, v in envelope.items() if k in ENVELOPE_FIELDS}
    raw.update(payload)
    return from_dict(raw)
