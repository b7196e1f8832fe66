"""The event bus: a port (`port.EventBus`), an in-memory adapter and an aio-pika adapter.

Composition roots build one with `bus_from_url(settings.broker_url, Topology())`; nothing here
connects at import time.
"""

from __future__ import annotations

from libs.events.bus.port import EventBus
from libs.events.bus.topology import Topology

IN_PROCESS_SCHEME = "memory:"


def is_in_process(url: str | None) -> bool:
    """Whether `url` names the in-process bus (None, "" or memory://): one process only."""
    return not url or url.startswith(IN_PROCESS_SCHEME)


def bus_from_url(url: str | None, topology: Topology | None = None) -> EventBus:
    """`amqp://` / `amqps://` → RabbitMQ (aio-pika); None, "" or `memory://` → in-process."""
    if not url or is_in_process(url):
        from libs.events.bus.memory.adapter import InMemoryBus

        return InMemoryBus(topology)
    if url.startswith(("amqp://", "amqps://")):
        from libs.events.bus.amqp.adapter import AmqpBus

        return AmqpBus(url, topology)
    raise ValueError(
        f"KTRDR_BROKER_URL must start with amqp://, amqps:// or memory:// (got {url!r})"
    )
