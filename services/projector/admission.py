"""What the projector folds from the bus: only trainers' events, for trainings the log knows.

The bus is open to anything with the broker's credentials; the log must stay the truth. So, per
delivery on `ktrdr.projector`:
- an event a trainer emits (its type lists the trainer among its emitters, its source reads
  `trainer:<id>`) is folded when its training is in the log, with the same tenant; one for a
  training the log does not know (a phantom: it would create a row stuck forever in `running`)
  is dead-lettered with that reason. Trainer-level events (heartbeats) have no training.
- API and projector events reach the bus only through the outbox relay, which publishes what is
  already in the log: their bus copy is acked and not appended again. One whose training the
  log does not know did not come from the relay, and is dead-lettered ("API events arrive only
  through the API").
- any other source for a type (e.g. `source: api` on a Started) is dead-lettered.
Oversized and undecodable bodies never get here: the bus policy parks them (bus/policy.py).

Known trainings are remembered (training id → tenant, a bounded LRU), so the hot path of a
running training costs no read; a miss reads the read model once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from libs.events.bus.port import Reject
from libs.events.catalog import Event
from services.projector.outage import Probe, database_down

log = logging.getLogger("ktrdr.projector")

UNKNOWN_TRAINING = "unknown_training"
NOT_FROM_A_TRAINER = "not_from_a_trainer"
TRAINER_SOURCE_PREFIX = "trainer:"


class Admission:
    """`probe` answers "is the database up?": a read that fails while it does not is retried
    with backoff, forever (the delivery waits unacked, as the committer's do: an outage must
    never dead-letter an event)."""

    def __init__(
        self, store: Any, probe: Probe, *, remember: int = 100_000, max_delay_s: float = 5.0
    ) -> None:
        self._store, self._probe = store, probe
        self._remember = remember
        self._max_delay_s = max_delay_s
        self._tenants: OrderedDict[str, str] = OrderedDict()

    async def fold_it(self, event: Event) -> bool:
        """True: append and fold `event`; False: already in the log (ack, nothing to do).
        Raises Reject (dead-letter it, with the reason) for what must never be folded."""
        emitter = _emitter(event.source)
        if emitter not in event.EMITTERS:
            raise Reject(
                f"{event.type} {event.event_id} claims source {event.source!r}, but only "
                f"{', '.join(sorted(event.EMITTERS))} emit {event.type}",
                kind=NOT_FROM_A_TRAINER,
            )
        if event.training_id is None:
            return emitter == "trainer"  # heartbeats: trainer-level, no training to check
        tenant = await self._tenant_of(event.training_id)
        if tenant is None:
            reason = (
                f"{event.type} {event.event_id} for training {event.training_id!r}, which the "
                "log does not know"
            )
            if emitter != "trainer":
                reason += "; API and projector events reach the bus only from the log"
            raise Reject(reason, kind=UNKNOWN_TRAINING)
        if tenant != event.tenant:
            raise Reject(
                f"{event.type} {event.event_id} names tenant {event.tenant!r}; training "
                f"{event.training_id!r} belongs to another tenant",
                kind=UNKNOWN_TRAINING,
            )
        return emitter == "trainer"

    async def _tenant_of(self, training_id: str) -> str | None:
        tenant = self._tenants.get(training_id)
        if tenant is not None:
            self._tenants.move_to_end(training_id)
            return tenant
        state = await self._read(training_id)
        if state is None:
            return None
        self._tenants[training_id] = state.tenant
        if len(self._tenants) > self._remember:
            self._tenants.popitem(last=False)
        return str(state.tenant)

    async def _read(self, training_id: str) -> Any:
        delay = 0.05
        while True:
            try:
                return await self._store.get_training(training_id)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not await database_down(error, self._probe):
                    raise  # not an outage: the bus requeues it
                log.warning(
                    "database unavailable (%s); reading %s again in %.2fs",
                    error,
                    training_id,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_delay_s)


def _emitter(source: str) -> str:
    return "trainer" if source.startswith(TRAINER_SOURCE_PREFIX) else source
