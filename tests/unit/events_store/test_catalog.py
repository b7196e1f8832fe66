"""The catalog's metadata: what the topology, the relay, the stores and the CLI derive from it."""

from __future__ import annotations

import pydantic
import pytest

from libs.events import catalog as ev
from libs.events.bus.topology import Topology
from tests.support.events import TrainingScript


def test_every_event_declares_its_routing_key_emitters_and_own_summary() -> None:
    for event_type, cls in ev.REGISTRY.items():
        assert event_type == cls.TYPE and cls.ROUTING_KEY and cls.EMITTERS
        assert cls.summary is not ev.Event.summary, f"{event_type} has no summary of its own"


def test_summaries_are_one_line_with_the_telling_values() -> None:
    s = TrainingScript("t-1")
    run = s.run(epochs=2, batches=2, outcome="completed", version=4)
    lines = [event.summary() for event in [s.requested(), *run, s.heartbeat()]]
    assert all(line and "\n" not in line for line in lines)
    assert "phase 9/11: training" in lines
    assert any("model neuro_mean_reversion/1d_v4" in line for line in lines)
    judged = run[-1].model_copy(
        update={"test_metrics": {"accuracy": 0.5, "verdict": "evidence of skill at 95 %: no (x)"}}
    )
    assert judged.summary().endswith("test accuracy 0.500; evidence of skill at 95 %: no (x)")


def test_the_control_stream_binds_exactly_the_control_events() -> None:
    topology = Topology()
    for cls in ev.REGISTRY.values():
        if cls is ev.TrainingRequested:
            continue
        routed = topology.routes(topology.events_exchange, cls.ROUTING_KEY)
        assert (topology.control_stream in routed) == cls.CONTROL, cls.TYPE


def test_type_and_schema_version_come_from_the_class_and_cannot_be_overridden() -> None:
    event = TrainingScript("t-1").started()
    assert (event.type, event.schema_version) == ("Started", ev.Started.SCHEMA_VERSION)
    data = event.model_dump()
    with pytest.raises(pydantic.ValidationError):
        ev.Started.model_validate(data | {"type": "Completed"})
    with pytest.raises(pydantic.ValidationError):
        ev.Started.model_validate(data | {"schema_version": 7})
    assert ev.Started.model_validate(data) == event


def test_trainer_only_types_are_the_ones_no_other_service_emits() -> None:
    assert ev.Failed.TYPE not in ev.TRAINER_ONLY_TYPES  # the projector fails dead requests too
    assert {ev.Started.TYPE, ev.BatchProgress.TYPE} <= ev.TRAINER_ONLY_TYPES
    assert not ev.TRAINER_ONLY_TYPES & {ev.TrainingRequested.TYPE, ev.CancelRequested.TYPE}
