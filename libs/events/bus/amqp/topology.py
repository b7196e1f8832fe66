"""Realise `Topology` specs on RabbitMQ (idempotent: re-declaring the same thing is a no-op)."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel

from libs.events.bus.topology import Topology

_KINDS = {"topic": aio_pika.ExchangeType.TOPIC, "fanout": aio_pika.ExchangeType.FANOUT}


async def declare_topology(channel: AbstractChannel, topology: Topology) -> None:
    for exchange in topology.exchanges():
        await channel.declare_exchange(exchange.name, _KINDS[exchange.kind], durable=True)
    for spec in topology.queues():
        queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        for binding in spec.bindings:
            await queue.bind(binding.exchange, routing_key=binding.routing_key)


async def delete_topology(channel: AbstractChannel, topology: Topology) -> None:
    for queue in topology.queues():
        await channel.queue_delete(queue.name)
    for exchange in topology.exchanges():
        await channel.exchange_delete(exchange.name)
