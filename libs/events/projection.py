"""Read models folded in memory: the one loop both the store's append (a few events on top of
the current rows) and the rebuild (the whole log from nothing) run the pure folds through."""

from __future__ import annotations

from typing import Any

from libs.events.folds import apply
from libs.events.state import EpochRow, ModelRow, TrainingState


class Projection:
    """`trainings`, `training_epochs` and `models` rows after the events applied so far."""

    def __init__(self, trainings: dict[str, TrainingState] | None = None) -> None:
        # Seeded with the current rows of the trainings an append touches; empty for a rebuild.
        self.trainings: dict[str, TrainingState] = trainings if trainings is not None else {}
        self.epochs: dict[tuple[str, int, int], EpochRow] = {}
        self.models: dict[tuple[str, str, int], ModelRow] = {}

    def apply(self, position: int, event: Any) -> None:
        trainings = self.trainings
        result = apply(trainings.get(event.training_id), event, position)
        trainings[event.training_id] = result.state
        if result.epoch is not None:
            self.epochs[result.epoch.key] = result.epoch
        if result.model is not None:
            # A model version is written once: the first Completed that names it keeps it.
            self.models.setdefault(result.model.key, result.model)
