"""The broker topology, declared in ONE place. Both adapters realise these specs.

    ktrdr.events  (topic, durable) ── every event, routing key from the catalog
      ├─ training.requested.any   → ktrdr.trainer.requests.any   (quorum, competing consumers)
      ├─ training.requested.cpu   → ktrdr.trainer.requests.cpu   (quorum)
      ├─ training.requested.cuda  → ktrdr.trainer.requests.cuda  (quorum)
      ├─ training.requested.mps   → ktrdr.trainer.requests.mps   (quorum)
      ├─ training.#, trainer.#    → ktrdr.projector              (quorum, single active consumer)
      ├─ the catalog's CONTROL events: training.cancel_requested,
      │  training.{completed,failed,cancelled}
      │                           → ktrdr.control                (stream, max-age retention)
      └─ (ops tools bind their own exclusive queues)
    ktrdr.dead    (topic, durable) ── dead letters keep their original routing key, except the
      │                                projector's own, which become "projector.rejected"
      ├─ #                        → ktrdr.dead                   (quorum, the parking lot)
      └─ training.requested.*     → ktrdr.projector.dead_requests (quorum, single active)

Device routing: one request queue per device class. A trainer consumes the shared `any` queue
plus the queue of its own device (`queues_for_trainer("cuda")` → any + cuda), so a CUDA
request never lands on a CPU trainer and an `any` request runs exactly once, on whichever
trainer is free first. Prefetch is per consumer (quorum queues refuse global QoS), so a trainer
with concurrency C holding two consumers may receive up to 2C requests; it bounds the work
itself.

The projector binds `trainer.#` as well: it upserts the `trainers` read model from
TrainerHeartbeat. The relay's copies of the API's own events reach it too: it acks them
without storing them again (services/projector/admission.py). Requests the trainer queues
dead-letter (poison or delivery limit) reach `ktrdr.projector.dead_requests`, which the
projector turns into Failed; the
projector's own dead letters are re-keyed so they never loop back into that queue.

The control stream holds cancellations and terminal events: a trainer reads it from the start
on boot, learns of cancellations issued before it existed, and of trainings already finished
(a redelivered request whose Completed is out is acked, not rerun). Small segments let the
max-age retention actually drop old data (retention works per segment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from libs.events.catalog import CONTROL_ROUTING_KEYS, DeviceClass, TrainingRequested

DEVICE_CLASSES: tuple[str, ...] = get_args(DeviceClass)
PROJECTOR_REJECTED_KEY = "projector.rejected"


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    kind: Literal["topic", "fanout"]


@dataclass(frozen=True)
class BindingSpec:
    exchange: str
    routing_key: str


@dataclass(frozen=True)
class QueueSpec:
    name: str
    kind: Literal["quorum", "stream"]
    arguments: dict[str, Any] = field(default_factory=dict)
    bindings: tuple[BindingSpec, ...] = ()

    @property
    def delivery_limit(self) -> int | None:
        return self.arguments.get("x-delivery-limit")

    @property
    def single_active(self) -> bool:
        return bool(self.arguments.get("x-single-active-consumer"))


@dataclass(frozen=True)
class Topology:
    """Names and arguments; `prefix` gives tests (or tenants of a shared broker) their own set."""

    prefix: str = ""
    delivery_limit: int = 5
    control_max_age: str = "7D"
    control_segment_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        if self.delivery_limit < 0:
            raise ValueError(f"delivery_limit must be >= 0, got {self.delivery_limit}")

    # --- names ---------------------------------------------------------------------------------
    @property
    def events_exchange(self) -> str:
        return f"{self.prefix}ktrdr.events"

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}ktrdr.dead"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}ktrdr.dead"

    @property
    def projector_queue(self) -> str:
        return f"{self.prefix}ktrdr.projector"

    @property
    def projector_dead_requests_queue(self) -> str:
        return f"{self.prefix}ktrdr.projector.dead_requests"

    @property
    def control_stream(self) -> str:
        return f"{self.prefix}ktrdr.control"

    def trainer_queue(self, device: str) -> str:
        if device not in DEVICE_CLASSES:
            raise ValueError(f"device must be one of {', '.join(DEVICE_CLASSES)}; got {device!r}")
        return f"{self.prefix}ktrdr.trainer.requests.{device}"

    def queues_for_trainer(self, device: str) -> list[str]:
        """The request queues a trainer running on `device` (cpu, cuda, mps) consumes."""
        if device == "any" or device not in DEVICE_CLASSES:
            raise ValueError(f"a trainer's device must be one of cpu, cuda, mps; got {device!r}")
        return [self.trainer_queue("any"), self.trainer_queue(device)]

    # --- specs ---------------------------------------------------------------------------------
    def exchanges(self) -> list[ExchangeSpec]:
        return [
            ExchangeSpec(self.events_exchange, "topic"),
            ExchangeSpec(self.dead_exchange, "topic"),
        ]

    def _work_queue(self, name: str, bindings: list[BindingSpec], **extra: Any) -> QueueSpec:
        arguments = {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_exchange,
            **extra,
        }
        return QueueSpec(name, "quorum", arguments, tuple(bindings))

    def queues(self) -> list[QueueSpec]:
        events, dead = self.events_exchange, self.dead_exchange
        trainers = [
            self._work_queue(
                self.trainer_queue(device),
                [BindingSpec(events, f"{TrainingRequested.ROUTING_KEY}.{device}")],
            )
            for device in DEVICE_CLASSES
        ]
        projector_args = {
            "x-single-active-consumer": True,
            "x-dead-letter-routing-key": PROJECTOR_REJECTED_KEY,
        }
        return [
            QueueSpec(
                self.dead_queue,
                "quorum",
                {"x-queue-type": "quorum"},
                (BindingSpec(dead, "#"),),
            ),
            *trainers,
            self._work_queue(
                self.projector_queue,
                [BindingSpec(events, "training.#"), BindingSpec(events, "trainer.#")],
                **projector_args,
            ),
            self._work_queue(
                self.projector_dead_requests_queue,
                [BindingSpec(dead, f"{TrainingRequested.ROUTING_KEY}.*")],
                **projector_args,
            ),
            QueueSpec(
                self.control_stream,
                "stream",
                {
                    "x-queue-type": "stream",
                    "x-max-age": self.control_max_age,
                    "x-stream-max-segment-size-bytes": self.control_segment_bytes,
                },
                tuple(BindingSpec(events, key) for key in CONTROL_ROUTING_KEYS),
            ),
        ]

    def parks_bad_bodies(self, queue: str) -> bool:
        """Whether this queue's consumer dead-letters messages that are no event. Only the
        projector's queue, which binds every routing key events use: the other copies of a bad
        message are dropped, so it lands in ktrdr.dead once (policy.py)."""
        return queue == self.projector_queue

    def dead_letter_key(self, queue: str, routing_key: str) -> str:
        """The routing key a message parked from `queue` is published with on the dead
        exchange: the queue's dead-letter routing key if it has one (the projector's, so its
        dead letters never reach projector.dead_requests), else its own."""
        try:
            arguments = self.queue(queue).arguments
        except KeyError:
            return routing_key
        return str(arguments.get("x-dead-letter-routing-key", routing_key))

    def queue(self, name: str) -> QueueSpec:
        for spec in self.queues():
            if spec.name == name:
                return spec
        known = ", ".join(spec.name for spec in self.queues())
        raise KeyError(f"queue {name!r} is not part of the topology; known: {known}")

    def routes(self, exchange: str, routing_key: str) -> list[str]:
        """The queues a message published to `exchange` with `routing_key` lands in."""
        return [
            spec.name
            for spec in self.queues()
            if any(
                b.exchange == exchange and topic_matches(b.routing_key, routing_key)
                for b in spec.bindings
            )
        ]


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: words split on '.', `*` is exactly one word, `#` zero or more."""
    return _match(pattern.split("."), routing_key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])
