"""TrainerHeartbeat every `interval_s`: who this trainer is, its device, what it is running.

Heartbeats go straight to the bus, not through the ordered publisher: they belong to no
training stream, and a stale heartbeat delivered late after a broker outage would mislead more
than a missing one. A failed heartbeat is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

from libs.events.bus.port import EventBus
from libs.events.catalog import TrainerHeartbeat
from services.trainer.worker import TrainerIdentity

log = logging.getLogger("ktrdr.trainer.heartbeat")


class Heartbeat:
    def __init__(
        self,
        bus: EventBus,
        identity: TrainerIdentity,
        *,
        concurrency: int,
        running: Callable[[], list[str]],
        interval_s: float,
    ) -> None:
        self._bus = bus
        self._identity = identity
        self._concurrency = concurrency
        self._running = running
        self._interval = interval_s
        self._seq = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    def beat(self) -> TrainerHeartbeat:
        identity = self._identity
        return TrainerHeartbeat(
            source=identity.source,
            seq=next(self._seq),
            trainer_id=identity.trainer_id,
            host=identity.host,
            device=identity.device,
            concurrency=self._concurrency,
            running=self._running(),
        )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self._bus.publish(self.beat())
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("heartbeat not published: %s: %s", type(error).__name__, error)
            await asyncio.sleep(self._interval)
