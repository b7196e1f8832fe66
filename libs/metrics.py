"""Every Prometheus series a ktrdr process exposes, defined in ONE place (prometheus-client's
default registry; each process serves it on /metrics: the API on its own port, the projector
and the trainer on KTRDR_METRICS_PORT, `ktrdr up` through its API).

Series (all prefixed `ktrdr_`):
- http_requests_total{method,route,status}, http_request_seconds{method,route} (API; `route`
  is the route's template, never the raw path)
- trainings{status}: live trainings (queued, running, cancelling), set by the API at scrape
  time from the read model; trainings_finished_total{status}: terminal folds (projector)
- events_appended_total{type,source}: appended to the log (API, projector);
  events_folded_total{type}: trainer events the projector folded
- projector_lag_seconds (recorded_at - occurred_at of each folded event),
  projector_batch_size (events per group commit)
- relay_backlog (events in the log not yet published), relay_publish_seconds (a publish
  until the broker's confirms)
- sse_subscribers (open streams), sse_events_sent_total
- trainer_slots{device}, trainer_busy_slots{device}, trainer_samples_per_second (latest batch)
- checkpoint_seconds{phase}: time to write (phase="save") or read ("load") a training
  checkpoint: `observe_checkpoint(phase)` times a block
- dead_letters_total{queue,reason}: messages this process parked in ktrdr.dead
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

__all__ = ["CONTENT_TYPE_LATEST", "exposition", "serve_metrics"]

_LATENCY = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "ktrdr_http_requests",
    "HTTP requests answered, by route and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "ktrdr_http_request_seconds", "HTTP request duration", ["method", "route"], buckets=_LATENCY
)
TRAININGS = Gauge("ktrdr_trainings", "live trainings by status (read model)", ["status"])
TRAININGS_FINISHED = Counter(
    "ktrdr_trainings_finished", "trainings that reached a terminal status", ["status"]
)
EVENTS_APPENDED = Counter("ktrdr_events_appended", "events appended to the log", ["type", "source"])
EVENTS_FOLDED = Counter("ktrdr_events_folded", "bus events folded by the projector", ["type"])
PROJECTOR_LAG = Histogram(
    "ktrdr_projector_lag_seconds",
    "from an event's occurred_at to its commit in the log",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
PROJECTOR_BATCH = Histogram(
    "ktrdr_projector_batch_size",
    "events per group commit",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
RELAY_BACKLOG = Gauge("ktrdr_relay_backlog", "events in the log not yet published by the relay")
RELAY_PUBLISH_SECONDS = Histogram(
    "ktrdr_relay_publish_seconds", "a relay publish until the broker confirmed it", buckets=_LATENCY
)
SSE_SUBSCRIBERS = Gauge("ktrdr_sse_subscribers", "open SSE streams")
SSE_EVENTS_SENT = Counter("ktrdr_sse_events_sent", "events sent on SSE streams")
TRAINER_SLOTS = Gauge("ktrdr_trainer_slots", "trainings this trainer runs at once", ["device"])
TRAINER_BUSY = Gauge("ktrdr_trainer_busy_slots", "trainings running now", ["device"])
TRAINER_SAMPLES_PER_S = Gauge(
    "ktrdr_trainer_samples_per_second", "training samples per second (latest batch reported)"
)
CHECKPOINT_SECONDS = Histogram(
    "ktrdr_checkpoint_seconds",
    "time to write or read a training checkpoint",
    ["phase"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DEAD_LETTERS = Counter(
    "ktrdr_dead_letters", "messages parked in ktrdr.dead, by reason", ["queue", "reason"]
)


def events_appended(events: Sequence[Any]) -> None:
    for event in events:
        source = str(event.source).split(":", 1)[0]  # trainer:<id> -> trainer (bounded labels)
        EVENTS_APPENDED.labels(type=event.type, source=source).inc()


@contextmanager
def observe_checkpoint(phase: str = "save") -> Iterator[None]:
    """Time a checkpoint write (`phase="save"`) or read (`"load"`) into
    ktrdr_checkpoint_seconds."""
    started = perf_counter()
    try:
        yield
    finally:
        CHECKPOINT_SECONDS.labels(phase=phase).observe(perf_counter() - started)


def exposition() -> bytes:
    """The registry in the Prometheus text format (CONTENT_TYPE_LATEST)."""
    return generate_latest(REGISTRY)


def serve_metrics(port: int | None, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped
    """Serve /metrics on `port` from a background thread (projector, trainer); None: don't."""
    if port is not None:
        start_http_server(port, addr=host)
