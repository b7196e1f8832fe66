"""AckCoalescer: which settle frames go out, in which order, on a fake channel (no broker)."""

from __future__ import annotations

import asyncio

import aiormq
import pytest

from libs.events.bus.amqp.acks import AckCoalescer
from libs.events.bus.policy import Outcome

ACK, REQUEUE, DEAD = Outcome.ACK, Outcome.REQUEUE, Outcome.DEAD_LETTER


class FakeChannel:
    """Records the frames an aiormq channel would send: (method, tag, multiple)."""

    def __init__(self, closed: bool = False) -> None:
        self.frames: list[tuple[str, int, bool]] = []
        self.closed = closed
        self.sent = asyncio.Event()
        self.drained: asyncio.Event | None = None  # set: each send waits for it, like a drain

    async def _send(self, method: str, tag: int, multiple: bool) -> None:
        if self.closed:
            raise aiormq.exceptions.ChannelInvalidStateError("closed")
        self.frames.append((method, tag, multiple))  # on the wire in this order
        self.sent.set()
        if self.drained is not None:
            await self.drained.wait()

    async def basic_ack(self, tag: int, multiple: bool = False) -> None:
        await self._send("ack", tag, multiple)

    async def basic_nack(self, tag: int, requeue: bool = True) -> None:
        assert requeue
        await self._send("nack", tag, False)

    async def basic_reject(self, tag: int, requeue: bool = True) -> None:
        assert not requeue
        await self._send("reject", tag, False)


def tracked(channel: FakeChannel, tags: range) -> AckCoalescer:
    acks = AckCoalescer()
    for tag in tags:
        acks.track(channel, tag)
    return acks


async def test_acks_settled_together_become_one_multiple_ack_for_the_highest_tag() -> None:
    channel = FakeChannel()
    acks = tracked(channel, range(1, 501))
    for tag in range(1, 501):
        acks.settle(channel, tag, ACK)
    await acks.flush()
    assert channel.frames == [("ack", 500, True)]
    assert acks.frames_sent == 1


async def test_a_lone_ack_goes_out_on_the_next_loop_iteration_without_a_flush_call() -> None:
    channel = FakeChannel()
    acks = tracked(channel, range(1, 2))
    acks.settle(channel, 1, ACK)
    assert channel.frames == []  # not inline: others settled in this iteration may join
    await asyncio.wait_for(channel.sent.wait(), 1)
    assert channel.frames == [("ack", 1, True)]


async def test_an_ack_behind_a_running_handler_is_sent_alone_and_never_covers_it() -> None:
    channel = FakeChannel()
    acks = tracked(channel, range(1, 5))
    acks.settle(channel, 1, ACK)
    acks.settle(channel, 3, ACK)
    acks.settle(channel, 4, ACK)
    await acks.flush()
    # 2 is still being handled: 1 may be covered by a multiple ack, 3 and 4 only singly.
    assert channel.frames == [("ack", 1, True), ("ack", 3, False), ("ack", 4, False)]
    acks.settle(channel, 2, ACK)
    await acks.flush()
    assert channel.frames[3:] == [("ack", 2, True)]


async def test_requeues_and_dead_letters_stay_individual_and_in_tag_order() -> None:
    channel = FakeChannel()
    acks = tracked(channel, range(1, 7))
    for tag, outcome in zip(range(1, 7), [ACK, ACK, REQUEUE, ACK, DEAD, ACK], strict=True):
        acks.settle(channel, tag, outcome)
    await acks.flush()
    assert channel.frames == [
        ("ack", 2, True),
        ("nack", 3, False),
        ("ack", 4, True),  # covers 4 only: 3 was settled by its own frame just before
        ("reject", 5, False),
        ("ack", 6, True),
    ]


async def test_nothing_is_sent_twice() -> None:
    channel = FakeChannel()
    acks = tracked(channel, range(1, 4))
    for tag in range(1, 4):
        acks.settle(channel, tag, ACK)
    await acks.flush()
    await acks.flush()
    acks.settle(channel, 2, ACK)  # settled again (a bug elsewhere): already gone, ignored
    await acks.drain()
    assert channel.frames == [("ack", 3, True)]


async def test_deliveries_of_a_replaced_channel_are_forgotten_not_acked_on_the_new_one() -> None:
    old, new = FakeChannel(), FakeChannel()
    acks = tracked(old, range(1, 3))
    acks.track(new, 1)  # the robust channel reopened: tags start again at 1
    acks.settle(old, 2, ACK)  # a handler of the old channel finishes late
    acks.settle(new, 1, ACK)
    await acks.drain()
    assert old.frames == []
    assert new.frames == [("ack", 1, True)]


async def test_a_closed_channel_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    channel = FakeChannel(closed=True)
    acks = tracked(channel, range(1, 3))
    acks.settle(channel, 1, ACK)
    acks.settle(channel, 2, DEAD)
    await acks.drain()
    assert acks.frames_sent == 0
    assert "could not ack delivery 1" in caplog.text


async def test_a_flush_waits_for_the_one_still_sending_so_frames_stay_in_tag_order() -> None:
    channel = FakeChannel()
    channel.drained = asyncio.Event()
    acks = tracked(channel, range(1, 5))
    acks.settle(channel, 1, ACK)
    acks.settle(channel, 2, REQUEUE)
    first = asyncio.ensure_future(acks.flush())
    await asyncio.wait_for(channel.sent.wait(), 1)  # the first flush is waiting on a drain
    acks.settle(channel, 3, ACK)
    acks.settle(channel, 4, ACK)
    second = asyncio.ensure_future(acks.flush())
    channel.drained.set()
    await asyncio.wait_for(asyncio.gather(first, second), 1)
    # Had ack 4 (multiple) overtaken nack 2, the broker would have acked delivery 2.
    assert channel.frames == [("ack", 1, True), ("nack", 2, False), ("ack", 4, True)]
