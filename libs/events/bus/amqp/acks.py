"""Settling one AMQP subscription's deliveries with as few frames as the rules allow.

Each `basic.ack` costs the consumer a frame (marshal, a trip through aiormq's writer task, a
socket send) and the broker a settle command (a Raft log entry on a quorum queue): one per
message was most of the projector's CPU. So outcomes are recorded here and sent together on the
next loop iteration, when a group commit has released its whole batch:

- a run of acked deliveries at the front of the channel's outstanding ones becomes ONE
  `basic.ack(multiple=True)` for its highest tag — only when every lower outstanding delivery is
  settled (the broker acks every outstanding tag up to it);
- a delivery acked behind one still being handled is acked alone, at once: a long handler (a
  training holding its request) never holds back the acks of the others;
- requeues and dead letters stay individual frames, sent in tag order with the acks, and count
  as settled: a later multiple ack does not cover them (the broker no longer holds them out).

Delivery tags belong to one channel. After a reconnect the robust channel has a new underlying
channel whose tags start again at 1; deliveries of the old one are forgotten here (the broker
requeued them when the old channel went) and never acked on the new one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiormq

from libs.events.bus.policy import Outcome

log = logging.getLogger("ktrdr.bus.amqp")
CLOSED_ERRORS = (aiormq.AMQPError, ConnectionError, RuntimeError)
PENDING = None  # the outcome of a delivery whose handler still runs


class AckCoalescer:
    def __init__(self) -> None:
        self._channel: Any = None  # the aiormq channel the outstanding tags belong to
        self._outstanding: dict[int, Outcome | None] = {}  # tag → outcome, in delivery order
        self._last_tag = 0
        self._flush_scheduled = False
        self._flushes: set[asyncio.Task[None]] = set()
        # One flush sends at a time: frames must reach the wire in tag order (a multiple ack
        # overtaking an earlier flush's reject would ack the rejected delivery).
        self._sending = asyncio.Lock()
        self.frames_sent = 0  # ack / nack / reject frames, for tests and benchmarks

    def track(self, channel: Any, delivery_tag: int) -> None:
        """Register a delivery as it arrives, before its handler runs (delivery order)."""
        if channel is not self._channel:  # a new underlying channel: tags start again
            self._channel, self._outstanding, self._last_tag = channel, {}, 0
        self._outstanding[delivery_tag] = PENDING
        if delivery_tag < self._last_tag:
            # Handlers start in delivery order (aiormq creates their tasks in order and asyncio
            # runs new tasks FIFO), so this cannot happen; if it did, keep the tags sorted.
            log.error("delivery %d tracked after %d", delivery_tag, self._last_tag)
            self._outstanding = dict(sorted(self._outstanding.items()))
        self._last_tag = max(self._last_tag, delivery_tag)

    def settle(self, channel: Any, delivery_tag: int, outcome: Outcome) -> None:
        """Record the handler's outcome; the frame goes out on the next loop iteration."""
        if channel is not self._channel or delivery_tag not in self._outstanding:
            return  # the channel it came on is gone: the broker has requeued it already
        self._outstanding[delivery_tag] = outcome
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._start_flush)

    def _start_flush(self) -> None:
        self._flush_scheduled = False
        task = asyncio.ensure_future(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        """Send the frames for every settled delivery now (also called before closing)."""
        async with self._sending:
            channel, frames = self._channel, self._take_frames()
            for outcome, tag, multiple in frames:
                try:
                    if outcome is Outcome.ACK:
                        await channel.basic_ack(tag, multiple=multiple)
                    elif outcome is Outcome.REQUEUE:
                        await channel.basic_nack(tag, requeue=True)
                    else:
                        await channel.basic_reject(tag, requeue=False)
                    self.frames_sent += 1
                except CLOSED_ERRORS as error:
                    # The channel went away under us: the broker redelivers what we could not
                    # settle, which consumers tolerate (they dedupe by event_id).
                    log.warning("could not %s delivery %d: %r", outcome.value, tag, error)
                    return

    async def drain(self) -> None:
        """Wait for scheduled flushes, then flush what is left (before closing the channel)."""
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        await self.flush()

    def _take_frames(self) -> list[tuple[Outcome, int, bool]]:
        frames: list[tuple[Outcome, int, bool]] = []
        taken: list[int] = []
        run_end: int | None = None  # highest tag of the current run of acks at the front
        at_front = True
        for tag, outcome in self._outstanding.items():
            if outcome is PENDING:
                at_front = False
                continue
            taken.append(tag)
            if outcome is Outcome.ACK and at_front:
                run_end = tag
                continue
            if run_end is not None:  # close the run before a requeue / dead letter
                frames.append((Outcome.ACK, run_end, True))
                run_end = None
            frames.append((outcome, tag, False))
        if run_end is not None:
            frames.append((Outcome.ACK, run_end, True))
        for tag in taken:
            del self._outstanding[tag]
        return frames
