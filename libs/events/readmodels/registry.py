"""THE list of read models. Append, `Projection`, rebuild (refold, compare, replace), the schema
tests and both stores work from it; adding a read model is its module plus one line here (and
its migration and test).

Order matters: tables are written in this order and emptied in reverse (foreign keys point at
`trainings`, which comes first). `trainings` is the stream fold every other model derives from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libs.events.readmodels import model_aliases, models, trainers, training_epochs, trainings
from libs.events.readmodels.unit import ReadModel

TRAININGS = trainings.READ_MODEL

READ_MODELS: tuple[ReadModel[Any], ...] = (
    TRAININGS,
    training_epochs.READ_MODEL,
    models.READ_MODEL,
    model_aliases.READ_MODEL,
    trainers.READ_MODEL,
)

# Rebuilt from the log (everything but the ephemeral ones).
REBUILT: tuple[ReadModel[Any], ...] = tuple(m for m in READ_MODELS if m.rebuilt)
# Read models other than trainings that accepted stream events add rows to.
DERIVED: tuple[ReadModel[Any], ...] = tuple(m for m in READ_MODELS if m.derive)


def _by_event_type(attribute: str) -> dict[str, tuple[ReadModel[Any], ...]]:
    index: dict[str, list[ReadModel[Any]]] = {}
    for model in READ_MODELS:
        hooks: Mapping[str, Any] = getattr(model, attribute)
        for event_type in hooks:
            index.setdefault(event_type, []).append(model)
    return {event_type: tuple(found) for event_type, found in index.items()}


# event type -> the read models that derive rows from it / record it.
DERIVING: dict[str, tuple[ReadModel[Any], ...]] = _by_event_type("derive")
RECORDING: dict[str, tuple[ReadModel[Any], ...]] = _by_event_type("record")
