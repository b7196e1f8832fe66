"""Events <-> `events` table rows. Reading is the hot path of tailing and rebuilds, so rows are
selected as plain tuples in a fixed column order and current-version events skip the upcaster."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from libs.events import catalog as ev
from libs.events import tables as t
from libs.events.codec import from_dict


class StoredEvent(NamedTuple):
    position: int
    recorded_at: datetime
    event: ev.Event


ENVELOPE_COLUMNS = (
    "event_id",
    "training_id",
    "type",
    "schema_version",
    "tenant",
    "source",
    "attempt",
    "seq",
    "correlation_id",
    "occurred_at",
)
_READ_COLUMNS = [t.events.c[name] for name in ("global_position", "recorded_at", "payload")]
_READ_COLUMNS += [t.events.c[name] for name in ENVELOPE_COLUMNS]


def select_events() -> sa.Select:
    """SELECT of the columns `stored_event` expects, in position order."""
    return sa.select(*_READ_COLUMNS).order_by(t.events.c.global_position)


def stored_event(row: Any) -> StoredEvent:
    """A StoredEvent from a `select_events()` row (older schema versions are upcast)."""
    position, recorded_at, payload, *envelope = row
    raw = dict(payload)
    raw.update(zip(ENVELOPE_COLUMNS, envelope, strict=True))
    cls = ev.REGISTRY.get(raw["type"])
    if cls is not None and raw["schema_version"] == cls.SCHEMA_VERSION:
        event = cls.model_validate(raw)
    else:
        event = from_dict(raw)  # upcasts, or names the unknown type
    return StoredEvent(position, recorded_at, event)


def event_row(event: ev.Event, recorded_at: datetime) -> dict[str, Any]:
    row = {name: getattr(event, name) for name in ENVELOPE_COLUMNS}
    row["recorded_at"] = recorded_at
    row["payload"] = ev.payload_of(event)
    return row
