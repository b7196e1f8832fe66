"""The one-line and JSON views of `ktrdr tail`."""

from __future__ import annotations

import json

from libs.events.bus.port import Delivery
from services.cli.commands.tail import format_delivery
from tests.support import events as make


def delivery_of(event) -> Delivery:
    return Delivery(event=event, queue="tap", routing_key=event.routing_key, redelivered=False)


def test_one_line_view_shows_key_type_training_and_the_telling_fields() -> None:
    event = make.progress(batch=7)
    line = format_delivery(delivery_of(event))
    assert "training.batch_progress" in line
    assert "BatchProgress" in line
    assert event.training_id in line
    assert "batch 7/10" in line  # the catalog summary (BatchProgress.summary)
    assert "\n" not in line


def test_json_view_round_trips_the_event() -> None:
    event = make.heartbeat()
    data = json.loads(format_delivery(delivery_of(event), as_json=True))
    assert data["routing_key"] == "trainer.heartbeat"
    assert data["event"]["event_id"] == str(event.event_id)
    assert data["event"]["training_id"] is None
