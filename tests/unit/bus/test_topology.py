"""The topology routes every catalog event where the design says, under any name prefix."""

from __future__ import annotations

import pytest

from libs.events.bus.topology import DEVICE_CLASSES, Topology, topic_matches
from libs.events.catalog import REGISTRY


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("training.#", "training", True),  # '#' matches zero words
        ("training.#", "training.requested.cpu", True),
        ("training.*", "training.requested.cpu", False),  # '*' is exactly one word
        ("training.requested.*", "training.requested.cpu", True),
        ("training.requested.*", "training.requested", False),
        ("#", "anything.at.all", True),
        ("*.heartbeat", "trainer.heartbeat", True),
        ("#.heartbeat", "a.b.trainer.heartbeat", True),
        ("training.#.cpu", "training.cpu", True),
        ("training.completed", "training.completedx", False),
    ],
)
def test_topic_matching(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def test_every_catalog_event_reaches_a_durable_queue() -> None:
    topology = Topology()
    for event_type, cls in REGISTRY.items():
        keys = (
            [f"training.requested.{d}" for d in DEVICE_CLASSES]
            if event_type == "TrainingRequested"
            else [cls.ROUTING_KEY]
        )
        for key in keys:
            assert topology.routes(topology.events_exchange, key), f"{event_type} ({key}) is lost"


def test_each_device_request_lands_in_its_own_queue_and_the_projector() -> None:
    topology = Topology()
    for device in DEVICE_CLASSES:
        routed = topology.routes(topology.events_exchange, f"training.requested.{device}")
        assert sorted(routed) == sorted([topology.trainer_queue(device), topology.projector_queue])


def test_a_cuda_trainer_takes_any_and_cuda_requests_only() -> None:
    topology = Topology()
    assert topology.queues_for_trainer("cuda") == [
        topology.trainer_queue("any"),
        topology.trainer_queue("cuda"),
    ]
    with pytest.raises(ValueError, match="cpu, cuda, mps"):
        topology.queues_for_trainer("any")
    with pytest.raises(ValueError, match="any, cpu, cuda, mps"):
        topology.trainer_queue("tpu")


def test_control_stream_gets_cancellations_and_terminal_events_but_not_progress() -> None:
    topology = Topology()
    exchange = topology.events_exchange
    for key in ["training.cancel_requested", "training.completed", "training.cancelled"]:
        assert topology.control_stream in topology.routes(exchange, key)
    for key in ["training.batch_progress", "training.requested.any", "trainer.heartbeat"]:
        assert topology.control_stream not in topology.routes(exchange, key)


def test_heartbeats_feed_the_projector_only() -> None:
    topology = Topology()
    assert topology.routes(topology.events_exchange, "trainer.heartbeat") == [
        topology.projector_queue
    ]


def test_dead_requests_reach_the_projector_but_its_own_rejects_do_not_loop_back() -> None:
    topology = Topology()
    dead = topology.dead_exchange
    assert sorted(topology.routes(dead, "training.requested.cpu")) == sorted(
        [topology.dead_queue, topology.projector_dead_requests_queue]
    )
    projector_args = topology.queue(topology.projector_queue).arguments
    rejected_key = projector_args["x-dead-letter-routing-key"]
    assert topology.routes(dead, rejected_key) == [topology.dead_queue]


def test_work_queues_are_quorum_with_a_limit_and_dead_lettering() -> None:
    topology = Topology(delivery_limit=3)
    for spec in topology.queues():
        if spec.name in (topology.dead_queue, topology.control_stream):
            continue
        assert spec.arguments["x-queue-type"] == "quorum"
        assert spec.delivery_limit == 3
        assert spec.arguments["x-dead-letter-exchange"] == topology.dead_exchange
    assert topology.queue(topology.projector_queue).single_active
    assert not topology.queue(topology.trainer_queue("any")).single_active
    assert topology.queue(topology.control_stream).arguments["x-queue-type"] == "stream"


def test_prefix_renames_everything() -> None:
    plain, prefixed = Topology(), Topology(prefix="t123.")
    names = [s.name for s in prefixed.queues()] + [e.name for e in prefixed.exchanges()]
    assert all(name.startswith("t123.") for name in names)
    assert [s.name for s in plain.queues()] == [n.removeprefix("t123.") for n in names[:-2]]
    for spec in prefixed.queues():
        for binding in spec.bindings:
            assert binding.exchange.startswith("t123.")


def test_unknown_queue_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="ktrdr.projector"):
        Topology().queue("nope")


def test_negative_delivery_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="delivery_limit"):
        Topology(delivery_limit=-1)
