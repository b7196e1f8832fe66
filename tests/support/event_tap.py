"""A recorder of every event that passes a bus tap, with waits on conditions over them.

Tests wait on what they expect (a predicate over the events seen so far) with a timeout, never
on a sleep. The predicate is re-checked on every event and every `recheck_s`, for conditions on
state that no event announces (e.g. "the trainer has no active run").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from libs.events.bus.port import Delivery
from libs.events.catalog import Event


class TappedEvents:
    recheck_s = 0.05
    wait_s = 60.0  # default of wait_for
    terminal_wait_s = 90.0  # default of wait_terminal

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Condition()

    async def _record(self, delivery: Delivery) -> None:
        """The tap's handler: `await bus.tap(["#"], self._record)`."""
        async with self._changed:
            self.events.append(delivery.event)
            self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[list[Event]], Any], within_s: float | None = None
    ) -> None:
        async def until() -> None:
            async with self._changed:
                while not predicate(self.events):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), self.recheck_s)

        await asyncio.wait_for(until(), self.wait_s if within_s is None else within_s)

    def of(self, training_id: str, *types: str) -> list[Event]:
        """The events of one training, optionally only those of the given types."""
        return [
            e
            for e in self.events
            if e.training_id == training_id and (not types or e.type in types)
        ]

    async def wait_terminal(self, training_id: str, within_s: float | None = None) -> Event:
        within_s = self.terminal_wait_s if within_s is None else within_s
        await self.wait_for(lambda _: any(e.is_terminal for e in self.of(training_id)), within_s)
        return next(e for e in self.of(training_id) if e.is_terminal)
