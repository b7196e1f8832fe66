"""What every store adapter does the same way around an append and a read (see port.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from libs.events import catalog as ev
from libs.events.notify.port import Notification
from libs.events.readmodels.registry import RECORDING
from libs.events.readmodels.unit import ReadModel
from libs.events.store.idempotency import IdempotencyClaim, claimed_training
from libs.events.store.port import Idempotency, StoredEvent

Recorded = list[tuple[ReadModel[Any], list[Any]]]  # (read model, its rows), registry order


def split(events: Sequence[ev.Event]) -> tuple[Recorded, list[ev.Event]]:
    """(the rows of events the log does not keep, by read model; the stream events to store).
    Refuses a stream event without training_id and an unstored event no read model records."""
    recorded: dict[str, tuple[ReadModel[Any], list[Any]]] = {}
    stream: list[ev.Event] = []
    for event in events:
        if event.STORED:
            if event.training_id is None:
                raise ValueError(f"{event.type} {event.event_id}: training_id is required")
            stream.append(event)
            continue
        models = RECORDING.get(event.type)
        if not models:
            raise ValueError(f"{event.type} is not stored and no read model records it")
        for model in models:
            recorded.setdefault(model.name, (model, []))[1].append(model.record[event.type](event))
    return list(recorded.values()), stream


class AppendPlan(NamedTuple):
    """What an append is asked to do, sorted out the same way by every adapter."""

    recorded: Recorded  # rows of events the log does not keep
    stream: list[ev.Event]  # the events to store
    claim: IdempotencyClaim | None
    claimed_training: str  # the training a first use of `claim` will point at ("" if none)


def plan(events: Sequence[ev.Event], idempotency: Idempotency | None) -> AppendPlan:
    claim = IdempotencyClaim(*idempotency) if isinstance(idempotency, tuple) else idempotency
    recorded, stream = split(events)
    return AppendPlan(recorded, stream, claim, claimed_training(stream) if claim else "")


def training_ids(stored: Sequence[StoredEvent]) -> list[str]:
    """The trainings an append touched, in first-appearance order (all stream events have one)."""
    return list(dict.fromkeys(s.event.training_id for s in stored if s.event.training_id))


def notifications(stored: Sequence[StoredEvent]) -> list[Notification]:
    """One per training touched: its highest new position and that event's type."""
    latest: dict[str | None, Notification] = {}
    for position, _recorded, event in stored:  # position order: the last one per training wins
        latest[event.training_id] = Notification(position, event.training_id, event.type)
    return sorted(latest.values())


def parse_sources(sources: Collection[str]) -> tuple[list[str], list[str]]:
    """(exact source names, prefixes) of a `read_all(sources=...)` filter."""
    if isinstance(sources, str):
        raise TypeError("sources must be a collection of names, e.g. {'api', 'projector'}")
    exact = [s for s in sources if not s.endswith("*")]
    prefixes = [s[:-1] for s in sources if s.endswith("*")]
    return exact, prefixes
