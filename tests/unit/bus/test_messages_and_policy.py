"""The wire mapping and the failure policy, without a broker."""

from __future__ import annotations

import json

import pytest

from libs.events.bus import bus_from_url, is_in_process
from libs.events.bus.memory.adapter import InMemoryBus
from libs.events.bus.messages import RawMessage, headers_for, outgoing
from libs.events.bus.policy import Outcome, settle, settle_best_effort
from libs.events.bus.port import Delivery, TopologyMismatch
from libs.events.bus.topology import Topology
from libs.events.codec import encode
from tests.support import events as make


def test_outgoing_message_follows_the_design_wire_format() -> None:
    event = make.requested("mps")
    message = outgoing(event)
    assert message.routing_key == "training.requested.mps"
    assert message.message_id == str(event.event_id)
    assert message.type == "TrainingRequested"
    assert (message.content_type, message.delivery_mode) == ("application/json", 2)
    assert json.loads(message.body)["event_id"] == str(event.event_id)
    assert message.headers == {
        "training_id": event.training_id,
        "schema_version": 1,
        "tenant": "default",
    }


def test_events_without_a_training_carry_no_training_header() -> None:
    assert "training_id" not in headers_for(make.heartbeat())


@pytest.mark.parametrize(("header", "count"), [(None, 0), (3, 3), ("2", 2), ("x", 0)])
def test_delivery_count_comes_from_the_quorum_header(header, count) -> None:
    headers = {} if header is None else {"x-delivery-count": header}
    assert RawMessage("q", "k", b"", headers=headers).delivery_count == count


def raw(body: bytes) -> RawMessage:
    return RawMessage("q", "training.cancel_requested", body)


async def test_policy_acks_after_the_handler_returns() -> None:
    seen: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        seen.append(delivery)

    event = make.cancel()
    assert await settle(raw(encode(event)), handler) is Outcome.ACK
    assert seen[0].event == event


async def test_policy_requeues_when_the_handler_raises() -> None:
    async def handler(delivery: Delivery) -> None:
        raise RuntimeError("database is down")

    assert await settle(raw(encode(make.cancel())), handler) is Outcome.REQUEUE


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe",
        b"{",
        b'{"type": "Nope"}',
        b'{"type": "CancelRequested"}',
        b'"a string"',
        b'{"type": "BatchProgress", "schema_version": [1]}',
    ],
)
async def test_policy_dead_letters_undecodable_bodies_without_calling_the_handler(body) -> None:
    called = False

    async def handler(delivery: Delivery) -> None:
        nonlocal called
        called = True

    assert await settle(raw(body), handler) is Outcome.DEAD_LETTER
    assert not called


async def test_best_effort_settling_never_requeues() -> None:
    async def handler(delivery: Delivery) -> None:
        raise RuntimeError("boom")

    assert await settle_best_effort(raw(encode(make.cancel())), handler) is Outcome.ACK
    assert await settle_best_effort(raw(b"junk"), handler) is Outcome.ACK


def test_bus_from_url_picks_the_adapter_and_names_the_valid_schemes() -> None:
    assert isinstance(bus_from_url(None), InMemoryBus)
    assert isinstance(bus_from_url("memory://"), InMemoryBus)
    assert type(bus_from_url("amqp://guest:guest@localhost/")).__name__ == "AmqpBus"
    with pytest.raises(ValueError, match="amqp://, amqps:// or memory://"):
        bus_from_url("redis://localhost")


def test_is_in_process_agrees_with_the_adapter_bus_from_url_picks() -> None:
    for url in (None, "", "memory://", "amqp://guest:guest@localhost/", "amqps://h/"):
        assert is_in_process(url) == isinstance(bus_from_url(url), InMemoryBus)


async def test_memory_broker_refuses_a_queue_redeclared_with_other_arguments() -> None:
    bus = InMemoryBus(Topology(delivery_limit=5))
    await bus.start()
    with pytest.raises(TopologyMismatch, match="x-delivery-limit"):
        await InMemoryBus(Topology(delivery_limit=3), bus.broker).start()


async def test_consuming_an_unknown_queue_names_the_known_ones() -> None:
    bus = InMemoryBus()
    await bus.start()

    async def handler(delivery: Delivery) -> None: ...

    with pytest.raises(KeyError, match="ktrdr.trainer.requests.any"):
        await bus.consume("nope", handler)
    with pytest.raises(ValueError, match="prefetch"):
        await bus.consume(bus.topology.projector_queue, handler, prefetch=0)
    with pytest.raises(ValueError, match="consume_control"):
        await bus.consume(bus.topology.control_stream, handler)
