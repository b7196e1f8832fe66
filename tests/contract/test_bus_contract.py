"""One behaviour, two adapters: every test runs on the in-memory bus and on RabbitMQ."""

from __future__ import annotations

import asyncio
import json

import pytest

from libs.events.bus.messages import MAX_EVENT_BYTES
from libs.events.bus.policy import (
    HANDLER_FAILED,
    QUEUE_HEADER,
    REASON_HEADER,
    REASON_KIND_HEADER,
    ROUTING_KEY_HEADER,
    TOO_LARGE,
    UNDECODABLE,
)
from libs.events.bus.port import Delivery, EventBus, PublishFailed, Reject
from libs.events.catalog import Event
from tests.contract.conftest import WAIT_S, Harness
from tests.support import events as make


class Collector:
    """A handler that records deliveries; tests wait on it, never sleep."""

    def __init__(self, fail_on: set[str] | None = None) -> None:
        self.deliveries: list[Delivery] = []
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._fail_on = fail_on or set()

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self._queue.put_nowait(delivery)
        if str(delivery.event.event_id) in self._fail_on:
            raise RuntimeError("handler refuses this one")

    async def next(self) -> Delivery:
        return await asyncio.wait_for(self._queue.get(), WAIT_S)

    async def until(self, event: Event) -> list[Delivery]:
        """Everything received up to and including `event` (queues are FIFO)."""
        received = []
        while True:
            delivery = await self.next()
            received.append(delivery)
            if delivery.event.event_id == event.event_id:
                return received

    @property
    def ids(self) -> list[str]:
        return [str(d.event.event_id) for d in self.deliveries]


def ids(events: list[Event] | list[Delivery]) -> list[str]:
    return [str(e.event.event_id if isinstance(e, Delivery) else e.event_id) for e in events]


async def test_publish_routes_each_event_to_the_right_queues(harness: Harness) -> None:
    bus, topo = harness.bus, harness.topology
    tid = make.training_id()
    cuda, cancel, step, done = (
        make.requested("cuda", tid),
        make.cancel(tid),
        make.progress(tid),
        make.completed(tid),
    )
    beat = make.heartbeat()
    await bus.publish_many([cuda, cancel, step, done, beat])
    # Sentinels published last: FIFO queues hold nothing else before them that they should not.
    any_sentinel, cuda_sentinel = make.requested("any"), make.requested("cuda")
    await bus.publish_many([any_sentinel, cuda_sentinel])

    queues = {
        "any": (topo.trainer_queue("any"), any_sentinel, []),
        "cuda": (topo.trainer_queue("cuda"), cuda_sentinel, [cuda]),
        "projector": (
            topo.projector_queue,
            cuda_sentinel,
            [cuda, cancel, step, done, beat, any_sentinel],
        ),
    }
    for name, (queue, sentinel, expected) in queues.items():
        collector = Collector()
        await bus.consume(queue, collector, prefetch=10)
        received = await collector.until(sentinel)
        assert ids(received[:-1]) == ids(expected), name

    control = Collector()
    subscription = await bus.consume_control(control)
    await asyncio.wait_for(subscription.caught_up.wait(), WAIT_S)
    assert ids(control.deliveries) == ids([cancel, done])


async def test_delivery_carries_the_event_and_its_amqp_metadata(harness: Harness) -> None:
    event = make.requested("cpu")
    collector = Collector()
    await harness.bus.consume(harness.topology.trainer_queue("cpu"), collector)
    await harness.bus.publish(event)
    delivery = await collector.next()
    assert delivery.event == event
    assert delivery.routing_key == "training.requested.cpu"
    assert delivery.queue == harness.topology.trainer_queue("cpu")
    assert (delivery.redelivered, delivery.delivery_count, delivery.death) == (False, 0, None)
    assert delivery.headers["training_id"] == event.training_id
    assert delivery.headers["tenant"] == event.tenant
    assert delivery.headers["schema_version"] == event.schema_version


async def test_publish_returns_only_after_the_broker_holds_every_message(
    harness: Harness,
) -> None:
    events = [make.requested("mps") for _ in range(50)]
    await harness.bus.publish_many(events)
    # No waiting: the confirm means the queue already holds them all.
    assert await harness.depth(harness.topology.trainer_queue("mps")) == 50


async def test_publish_keeps_order_within_a_batch(harness: Harness) -> None:
    tid = make.training_id()
    events = [make.progress(tid, batch=i) for i in range(300)]
    collector = Collector()
    await harness.bus.consume(harness.topology.projector_queue, collector, prefetch=50)
    await harness.bus.publish_many(events)
    received = await collector.until(events[-1])
    assert ids(received) == ids(events)


async def test_competing_consumers_split_the_work(harness: Harness) -> None:
    other_bus = await harness.second_bus()
    queue = harness.topology.trainer_queue("any")
    both_busy = asyncio.Event()
    holders: dict[str, list[str]] = {"a": [], "b": []}

    def busy_handler(name: str):
        async def handle(delivery: Delivery) -> None:
            holders[name].append(str(delivery.event.event_id))
            if holders["a"] and holders["b"]:
                both_busy.set()
            await both_busy.wait()  # hold the message: prefetch 1 forces the other consumer

        return handle

    await harness.bus.consume(queue, busy_handler("a"), prefetch=1)
    await other_bus.consume(queue, busy_handler("b"), prefetch=1)
    events = [make.requested("any"), make.requested("any")]
    await harness.bus.publish_many(events)
    await asyncio.wait_for(both_busy.wait(), WAIT_S)
    assert len(holders["a"]) == len(holders["b"]) == 1
    assert sorted(holders["a"] + holders["b"]) == sorted(ids(events))


async def test_single_active_consumer_gets_everything_until_it_stops(harness: Harness) -> None:
    other_bus = await harness.second_bus()
    queue = harness.topology.projector_queue
    first, second = Collector(), Collector()
    first_subscription = await harness.bus.consume(queue, first, prefetch=1)
    await other_bus.consume(queue, second, prefetch=1)
    events = [make.progress() for _ in range(6)]
    await harness.bus.publish_many(events)
    assert ids(await first.until(events[-1])) == ids(events)
    assert second.deliveries == []

    await first_subscription.stop()
    late = make.progress()
    await harness.bus.publish(late)
    assert (await second.next()).event.event_id == late.event_id
    assert len(first.deliveries) == len(events)


async def test_failing_handler_is_retried_then_dead_lettered_and_the_consumer_goes_on(
    harness: Harness,
) -> None:
    topo = harness.topology
    poison, good = make.requested("cpu"), make.requested("cpu")
    collector = Collector(fail_on={str(poison.event_id)})
    await harness.bus.consume(topo.trainer_queue("cpu"), collector)
    dead_requests = Collector()
    await harness.bus.consume(topo.projector_dead_requests_queue, dead_requests)
    await harness.bus.publish_many([poison, good])

    await collector.until(good)
    attempts = [d for d in collector.deliveries if d.event.event_id == poison.event_id]
    limit = topo.delivery_limit
    assert [d.delivery_count for d in attempts] == list(range(limit + 1))
    assert [d.redelivered for d in attempts] == [False] + [True] * limit

    # On its last try the consumer parks it itself, saying why (the broker could not).
    parked = await harness.next_dead()
    assert parked.message_id == str(poison.event_id)
    assert parked.headers[REASON_KIND_HEADER] == HANDLER_FAILED
    assert parked.headers[QUEUE_HEADER] == topo.trainer_queue("cpu")
    assert parked.headers[ROUTING_KEY_HEADER] == "training.requested.cpu"
    reason = parked.headers[REASON_HEADER]
    assert f"after {limit + 1} deliveries" in reason and "handler refuses this one" in reason
    # The projector hears about the dead request (to turn it into Failed), with the reason.
    dead = await dead_requests.next()
    assert dead.event == poison
    assert dead.headers[REASON_HEADER] == reason


async def test_a_handler_rejection_is_parked_at_once_with_its_reason(harness: Harness) -> None:
    topo = harness.topology
    bad, good = make.requested("cpu"), make.requested("cpu")

    async def refuse(delivery: Delivery) -> None:
        if delivery.event.event_id == bad.event_id:
            raise Reject("nobody asked for this", kind="unknown_training")
        await collector(delivery)

    collector = Collector()
    await harness.bus.consume(topo.trainer_queue("cpu"), refuse)
    await harness.bus.publish_many([bad, good])
    await collector.until(good)
    parked = await harness.next_dead()
    assert parked.message_id == str(bad.event_id)
    assert parked.headers[REASON_HEADER] == "nobody asked for this"
    assert parked.headers[REASON_KIND_HEADER] == "unknown_training"


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        json.dumps({"type": "NoSuchEvent", "source": "api"}).encode(),
        json.dumps({"type": "TrainingRequested", "source": "api"}).encode(),  # schema error
        b"[1, 2, 3]",
    ],
    ids=["bad-json", "unknown-type", "schema-error", "not-an-object"],
)
async def test_a_bad_body_is_dead_lettered_once_with_its_reason(
    harness: Harness, body: bytes
) -> None:
    """The request queue and the projector's both get a copy; only the projector's consumer
    parks it (with the reason), the trainer's drops its own, so it lands in ktrdr.dead once."""
    topo = harness.topology
    trainer, projector = Collector(), Collector()
    await harness.bus.consume(topo.trainer_queue("any"), trainer)
    await harness.bus.consume(topo.projector_queue, projector)
    await harness.inject("training.requested.any", body)
    good = make.requested("any")
    await harness.bus.publish(good)
    assert ids(await trainer.until(good)) == ids([good])  # the handlers never saw the poison
    assert ids(await projector.until(good)) == ids([good])
    parked = await harness.next_dead()
    assert parked.body == body
    assert parked.headers[REASON_KIND_HEADER] == UNDECODABLE
    assert parked.headers[REASON_HEADER].startswith("not an event")
    assert parked.headers[QUEUE_HEADER] == topo.projector_queue
    # A second poison behind it is the next dead letter: the first one was parked only once.
    await harness.inject("training.requested.any", b"second")
    assert (await harness.next_dead()).body == b"second"


async def test_an_oversized_body_is_dead_lettered_with_its_size(harness: Harness) -> None:
    topo = harness.topology
    projector = Collector()
    await harness.bus.consume(topo.projector_queue, projector)
    await harness.inject("training.failed", b"x" * (MAX_EVENT_BYTES + 1))
    parked = await harness.next_dead()
    assert parked.headers[REASON_KIND_HEADER] == TOO_LARGE
    assert str(MAX_EVENT_BYTES) in parked.headers[REASON_HEADER]
    assert projector.deliveries == []


async def test_control_stream_replays_from_the_start_to_a_late_consumer(
    harness: Harness,
) -> None:
    history = [make.cancel(), make.completed(), make.cancel()]
    await harness.bus.publish_many([history[0], make.progress(), *history[1:]])

    late_bus = await harness.second_bus()  # e.g. a trainer that boots after the cancels
    replay = Collector()
    subscription = await late_bus.consume_control(replay)
    await asyncio.wait_for(subscription.caught_up.wait(), WAIT_S)
    assert ids(replay.deliveries) == ids(history)

    live_only = Collector()
    tail = await late_bus.consume_control(live_only, from_start=False)
    assert tail.caught_up.is_set()
    live = make.cancel()
    await harness.bus.publish(live)
    assert ids(await replay.until(live)) == ids([*history, live])
    assert ids(await live_only.until(live)) == ids([live])


async def test_tap_sees_matching_events_only(harness: Harness) -> None:
    collector = Collector()
    subscription = await harness.bus.tap(["training.cancel_requested", "trainer.*"], collector)
    cancel, beat = make.cancel(), make.heartbeat()
    await harness.bus.publish_many([make.progress(), cancel, make.requested("any"), beat])
    assert ids(await collector.until(beat)) == ids([cancel, beat])
    await subscription.stop()


async def test_stopping_a_consumer_mid_handler_hands_the_message_to_another(
    harness: Harness,
) -> None:
    queue = harness.topology.trainer_queue("cuda")
    started = asyncio.Event()

    async def never_finishes(delivery: Delivery) -> None:
        started.set()
        await asyncio.Event().wait()

    stuck = await harness.bus.consume(queue, never_finishes)
    event = make.requested("cuda")
    await harness.bus.publish(event)
    await asyncio.wait_for(started.wait(), WAIT_S)
    await stuck.stop(grace_s=0.01)

    other_bus: EventBus = await harness.second_bus()
    collector = Collector()
    await other_bus.consume(queue, collector)
    delivery = await collector.next()
    assert delivery.event.event_id == event.event_id
    assert delivery.redelivered


async def test_publishing_on_a_bus_that_is_not_started_fails_loudly(harness: Harness) -> None:
    with pytest.raises(PublishFailed, match="not started"):
        await harness.new_bus().publish(make.cancel())


async def test_is_connected_from_start_until_close(harness: Harness) -> None:
    assert harness.bus.is_connected  # the harness started it
    bus = harness.new_bus()
    assert not bus.is_connected
    await bus.start()
    try:
        assert bus.is_connected
        await bus.publish(make.cancel())  # connected means it can publish
    finally:
        await bus.close()
    assert not bus.is_connected
    assert harness.bus.is_connected  # closing one connection leaves the other up


async def test_control_sync_returns_once_everything_published_before_it_was_handled(
    harness: Harness,
) -> None:
    class SlowRecorder:
        """Records an event once its (deliberately slow) handling is done."""

        def __init__(self) -> None:
            self.handled: list[str] = []

        async def __call__(self, delivery: Delivery) -> None:
            await asyncio.sleep(0.02)  # the handler's work takes a moment; sync() waits for it
            self.handled.append(str(delivery.event.event_id))

    trainer_bus = await harness.second_bus()  # e.g. a trainer; the harness bus plays the API
    from_start = SlowRecorder()
    subscription = await trainer_bus.consume_control(from_start)
    await asyncio.wait_for(subscription.sync(), WAIT_S)  # nothing pending: returns
    assert from_start.handled == []

    before = [make.cancel(), make.completed(), make.cancel()]
    await harness.bus.publish_many(before)
    await asyncio.wait_for(subscription.sync(), WAIT_S)
    assert from_start.handled == ids(before)

    live = SlowRecorder()
    live_subscription = await trainer_bus.consume_control(live, from_start=False)
    later = make.cancel()
    await harness.bus.publish(later)
    await asyncio.wait_for(live_subscription.sync(), WAIT_S)
    assert live.handled == ids([later])
    await asyncio.wait_for(subscription.sync(), WAIT_S)
    assert from_start.handled == ids([*before, later])


async def test_sync_is_refused_on_a_plain_queue(harness: Harness) -> None:
    subscription = await harness.bus.consume(harness.topology.projector_queue, Collector())
    with pytest.raises(NotImplementedError):
        await subscription.sync()


async def _dead_queue_settles_at(harness: Harness, *, messages: int, consumers: int) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        (stats,) = await harness.bus.queue_stats([harness.topology.dead_queue])
        if (stats.messages, stats.consumers) == (messages, consumers):
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)  # the broker sends no event for it: look again


async def test_dead_letters_are_listed_shown_requeued_and_dropped(harness: Harness) -> None:
    """`ktrdr dead` and the admin API: the parking lot read without emptying it, one letter
    published again as it first was, another removed."""
    await harness.release_dead_queue()
    topo = harness.topology
    first, second, good = make.requested("cpu"), make.requested("cpu"), make.requested("cpu")
    passed = Collector()

    async def refuse_the_first_two(delivery: Delivery) -> None:
        if delivery.event.event_id in (first.event_id, second.event_id):
            raise Reject("no such training", kind="unknown_training")
        await passed(delivery)

    refusing = await harness.bus.consume(topo.trainer_queue("cpu"), refuse_the_first_two)
    await harness.bus.publish_many([first, second, good])
    await passed.until(good)  # prefetch 1: both were parked before `good` was delivered
    await refusing.stop()

    letters = await harness.bus.dead_letters()
    assert [letter.id for letter in letters] == [str(first.event_id), str(second.event_id)]
    assert letters[0].reason == "no such training"
    assert letters[0].reason_kind == "unknown_training"
    assert letters[0].queue == topo.trainer_queue("cpu")
    assert letters[0].routing_key == "training.requested.cpu"
    assert letters[0].training_id == first.training_id and letters[0].type == "TrainingRequested"
    assert [x.id for x in await harness.bus.dead_letters()] == [x.id for x in letters]  # kept
    # Reading gave the letters back by closing its channel; a quorum queue counts them as ready
    # again (and forgets the reader) a moment later, so wait for that, with a deadline.
    assert await _dead_queue_settles_at(harness, messages=2, consumers=0)

    again = Collector()
    await harness.bus.consume(topo.trainer_queue("cpu"), again)
    requeued = await harness.bus.take_dead_letter(str(first.event_id), requeue=True)
    assert requeued is not None and requeued.id == str(first.event_id)
    redelivered = await again.next()
    assert redelivered.event == first and REASON_HEADER not in redelivered.headers
    (cpu_stats,) = await harness.bus.queue_stats([topo.trainer_queue("cpu")])
    assert cpu_stats.consumers == 1

    dropped = await harness.bus.take_dead_letter(str(second.event_id), requeue=False)
    assert dropped is not None and dropped.id == str(second.event_id)
    assert await harness.bus.dead_letters() == []
    assert await harness.bus.take_dead_letter("no-such-letter", requeue=False) is None
