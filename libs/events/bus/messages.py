"""The AMQP message format (architecture.md §4), shared by both adapters.

body = JSON of the event; message_id = event_id; type = event type; content_type
application/json; persistent; headers training_id, schema_version, tenant — so any AMQP client
can read the bus without this code. `RawMessage` is what a consumer got before decoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from libs.events.bus.port import Delivery
from libs.events.catalog import Event
from libs.events.codec import decode, encode

CONTENT_TYPE = "application/json"
PERSISTENT = 2  # AMQP delivery_mode
APP_ID = "ktrdr"
# Control-stream bookmark a consumer appends to learn when it has read everything before it.
MARKER_TYPE = "ktrdr.control.marker"
MARKER_HEADER = "x-ktrdr-marker"
# The largest event body a consumer accepts (a strategy snapshot is far smaller; a multi-MB
# error message is not an event worth keeping): larger ones are dead-lettered (policy.py).
MAX_EVENT_BYTES = 1_048_576


@dataclass(frozen=True)
class OutgoingMessage:
    routing_key: str
    body: bytes
    message_id: str
    type: str
    headers: dict[str, Any]
    content_type: str = CONTENT_TYPE
    delivery_mode: int = PERSISTENT
    correlation_id: str | None = None
    app_id: str = APP_ID


@dataclass(frozen=True)
class RawMessage:
    """An incoming message before decoding, adapter-neutral."""

    queue: str
    routing_key: str
    body: bytes
    redelivered: bool = False
    headers: Mapping[str, Any] = field(default_factory=dict)
    type: str | None = None
    message_id: str | None = None

    @property
    def delivery_count(self) -> int:
        count = self.headers.get("x-delivery-count", 0)
        return int(count) if isinstance(count, int | str) and str(count).isdigit() else 0

    @property
    def is_marker(self) -> bool:
        return self.type == MARKER_TYPE

    def to_delivery(self) -> Delivery:
        """Decode the body; raises ValueError (bad JSON, unknown type, schema error)."""
        return Delivery(
            event=decode(self.body),
            queue=self.queue,
            routing_key=self.routing_key,
            redelivered=self.redelivered,
            delivery_count=self.delivery_count,
            headers=dict(self.headers),
        )


def headers_for(event: Event) -> dict[str, Any]:
    headers: dict[str, Any] = {"schema_version": event.schema_version, "tenant": event.tenant}
    if event.training_id is not None:  # AMQP tables carry no useful null; omit instead
        headers["training_id"] = event.training_id
    return headers


def outgoing(event: Event) -> OutgoingMessage:
    return OutgoingMessage(
        routing_key=event.routing_key,
        body=encode(event),
        message_id=str(event.event_id),
        type=event.type,
        headers=headers_for(event),
        correlation_id=event.correlation_id,
    )
