"""What must hold after any fault: the suite's one checker (tests/reliability/README.md).

`violations` reads the whole log and the read models of a store and returns one line per broken
invariant (empty: all hold):

- every training is terminal, and one whose cancel was accepted is `cancelled` (never `failed`:
  also not `completed`, since every cancel in the suite targets a training far from its end);
- a completed training has exactly one `Completed` in the log, any other has none;
- every event the broker confirmed to a publisher (the tap's copy) is in the log, once (and the
  tap saw every submitted training's request, or it would prove nothing), except those the
  projector must refuse, which must not be;
- the read models equal a fresh rebuild from the log (libs/events/store/rebuild.py);
- every SSE stream a client followed to its end is the training's log, with no gap and no
  duplicate;
- a resumed attempt continues from a checkpoint: when earlier attempts completed epoch k, its
  `Started` names a resume position in epoch k or later (the trainer stores the checkpoint that
  starts epoch k before it reports epoch k complete: services/trainer/checkpoints.py), and it
  trains no epoch before that position again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from libs.events.catalog import Completed, EpochCompleted, Event, Started
from libs.events.store.port import StoredEvent
from libs.events.store.rebuild import rebuild
from libs.events.store.sql import SqlEventStore

TERMINAL = {"completed", "failed", "cancelled"}
PAGE = 5000


@dataclass
class Expectations:
    trainings: set[str] = field(default_factory=set)  # submitted through the API
    cancelled: set[str] = field(default_factory=set)  # cancels answered 202
    streams: dict[str, list[int]] = field(default_factory=dict)  # SSE ids followed to the end
    refused: set[str] = field(default_factory=set)  # event ids the projector must dead-letter


async def whole_log(store: SqlEventStore) -> list[StoredEvent]:
    stored: list[StoredEvent] = []
    while page := await store.read_all(stored[-1].position if stored else 0, PAGE):
        stored += page
    return stored


async def violations(
    store: SqlEventStore, confirmed: Sequence[Event], expect: Expectations
) -> list[str]:
    found: list[str] = []
    log = await whole_log(store)
    by_training: dict[str, list[StoredEvent]] = {}
    for stored in log:
        by_training.setdefault(stored.event.training_id or "", []).append(stored)

    ids = Counter(str(s.event.event_id) for s in log)
    found += [f"event {event_id} stored {n} times" for event_id, n in ids.items() if n > 1]
    tapped = {e.training_id for e in confirmed if e.type == "TrainingRequested"}
    found += [f"{t}: the tap never saw its TrainingRequested" for t in expect.trainings - tapped]
    lost = [
        e
        for e in confirmed
        if type(e).STORED and str(e.event_id) not in ids and str(e.event_id) not in expect.refused
    ]
    found += [f"refused event {i} is in the log" for i in sorted(expect.refused & set(ids))]
    found += [
        f"lost: {e.type} {e.event_id} of {e.training_id} (attempt {e.attempt}) was confirmed "
        "by the broker but is not in the log"
        for e in lost
    ]

    for training_id in sorted(expect.trainings | set(by_training) - {""}):
        state = await store.get_training(training_id)
        if state is None:
            found.append(f"{training_id}: no read model row")
            continue
        if state.status not in TERMINAL:
            found.append(f"{training_id}: not terminal ({state.status})")
        if training_id in expect.cancelled and state.status != "cancelled":
            found.append(f"{training_id}: cancel accepted but it ended {state.status}")
        completions = sum(
            1 for s in by_training.get(training_id, []) if s.event.type == Completed.TYPE
        )
        wanted = 1 if state.status == "completed" else 0
        if completions != wanted:
            found.append(f"{training_id}: {completions} Completed events, status {state.status}")

    for training_id, events in sorted(by_training.items()):
        found += _resume_violations(training_id, [s.event for s in events])

    for training_id, received in expect.streams.items():
        positions = [s.position for s in by_training.get(training_id, [])]
        if received != positions:
            missing = sorted(set(positions) - set(received))
            extra = sorted(set(received) - set(positions))
            found.append(
                f"{training_id}: SSE stream differs from the log "
                f"(missing {missing[:10]}, extra {extra[:10]}, {len(received)} received)"
            )

    report = await rebuild(store)
    found += [f"rebuild differs: {d}" for d in report.differences]
    return found


def _resume_violations(training_id: str, events: list[Event]) -> list[str]:
    """Attempts after the first: each continues where the earlier ones got to."""
    found: list[str] = []
    done = 0  # the last epoch any earlier attempt reported complete
    for attempt in sorted({e.attempt for e in events if isinstance(e, Started)}):
        started = next(e for e in events if isinstance(e, Started) and e.attempt == attempt)
        epochs = [e.epoch for e in events if isinstance(e, EpochCompleted) and e.attempt == attempt]
        resume = started.resume_epoch
        if done and (resume is None or resume < done):
            found.append(
                f"{training_id}: attempt {attempt} resumed at epoch {resume}, but epoch {done} "
                "was complete and checkpointed"
            )
        if resume is not None and epochs and min(epochs) < resume:
            found.append(
                f"{training_id}: attempt {attempt} resumed at epoch {resume} but trained epoch "
                f"{min(epochs)} again"
            )
        done = max([done, *epochs])
    return found
