"""Read models folded in memory: the one loop the stores' append (a few events on top of the
current rows), the rebuild (the whole log from nothing) and the in-memory store run the pure
folds through. It covers every read model the registry says is rebuilt from the log."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from libs.events.catalog import Event
from libs.events.readmodels.registry import DERIVED, DERIVING, TRAININGS
from libs.events.readmodels.trainings import TrainingState, apply
from libs.events.readmodels.unit import ReadModel


class Projection:
    """`trainings` plus the derived read models' rows after the events applied so far."""

    def __init__(self, trainings: dict[str, TrainingState] | None = None) -> None:
        # Seeded with the current rows of the trainings an append touches; empty for a rebuild.
        self.trainings: dict[str, TrainingState] = trainings if trainings is not None else {}
        self.derived: dict[str, dict[Hashable, Any]] = {model.name: {} for model in DERIVED}

    def apply(self, position: int, event: Event) -> None:
        training_id = event.training_id
        if training_id is None:
            raise ValueError(f"{event.type} {event.event_id} has no training_id")
        result = apply(self.trainings.get(training_id), event, position)
        self.trainings[training_id] = result.state
        if not result.accepted:
            return
        for model in DERIVING.get(event.type, ()):
            row = model.derive[event.type](result.state, event, position)
            if row is not None:
                rows = self.derived[model.name]
                key = model.key(row)
                rows[key] = model.merge(rows.get(key), row)

    def rows(self, model: ReadModel[Any]) -> Mapping[Any, Any]:
        """The rows of one rebuilt read model, by primary key."""
        if model is TRAININGS:
            return self.trainings
        return self.derived[model.name]
