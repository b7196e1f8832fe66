"""Realise `Topology` specs on RabbitMQ (idempotent: re-declaring the same thing is a no-op)."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel

from libs.events.bus.topology import Topology

_KINDS = {"topic": aio_pika.ExchangeType.TOPIC, "fanout": aio_pika.ExchangeType.FANOUT}


async def declare_topology(channel: AbstractChannel, topology: Topology) -> None:
    for spec in topology.exchanges():
        await channel.declare_exchange(spec.name, _KINDS[spec.kind], durable=True)
    for spec in topology.queues():
        queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        for binding in spec.bindings:
            await queue.bind(binding.exchange, routing_key=binding.routing_key)


async def delete_topology(channel: AbstractChannel, topology: Topology) -> None:
    for spec in topology.queues():
        await channel.queue_delete(spec.name)
    for spec in topology.exchanges():
        await channel.exchange_delete(spec.name)
