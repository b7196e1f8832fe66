"""Bus trainer benchmarks: what the bus adds to a training, and how fast a cancel lands.

    .venv/bin/python bench/trainer.py [--repeats 11] [--cancels 20] [--epochs 20] [--memory]

1. overhead  publish TrainingRequested → Completed received, through an in-process
             TrainerService, vs bare train_strategy() on the same request in the same process;
             between them, train_strategy() with the trainer's reporter and token only, and
             with its checkpoint sink too (no bus). One of each a round, in shuffled order,
             after one warm-up each; medians, the median of per-round ratios to bare, and
             best-of-n (on a shared machine the best runs are the least disturbed) of the
             whole request, of the training thread's own call (wall and CPU), and the fixed
             cost per request (receive, Started, the model's upload, Completed). Target: the
             training thread ≤ 3 % slower.
2. cancel    CancelRequested published → Cancelled received, with the training mid-epoch
             (after its first BatchProgress), over --cancels trainings: p50 / p99 / max.
             Target (minus the API and projector hops): < 100 ms plus one batch.

The bus is the real RabbitMQ on 127.0.0.1:5672 when reachable (a throw-away topology prefix,
deleted afterwards), else the in-memory bus; the first line says which.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from libs.artifacts.filesystem import FilesystemArtifactStore  # noqa: E402
from libs.events.bus import bus_from_url  # noqa: E402
from libs.events.bus.port import Delivery, EventBus  # noqa: E402
from libs.events.bus.topology import Topology  # noqa: E402
from libs.events.catalog import CancelRequested, Event, TrainingRequested  # noqa: E402
from libs.pipeline.config.strategy import load_strategy  # noqa: E402
from libs.pipeline.device import configure_threads  # noqa: E402
from libs.pipeline.pipeline import train_strategy  # noqa: E402
from libs.pipeline.request import TrainingRequest  # noqa: E402
from services.bootstrap import open_stack  # noqa: E402
from services.trainer.cancellation import RunToken  # noqa: E402
from services.trainer.checkpoints import ArtifactCheckpoints  # noqa: E402
from services.trainer.reporter import EventReporter, RunEnvelope  # noqa: E402
from services.trainer.service import TrainerService  # noqa: E402
from services.trainer.settings import TrainerSettings  # noqa: E402

AMQP_URL = os.environ.get("KTRDR_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
STRATEGY = ROOT / "strategies" / "neuro_mean_reversion.yaml"


class Watcher:
    """Futures resolved by events seen on a tap: first event of a type for a training."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], asyncio.Future[tuple[float, Event]]] = {}
        self.events: list[Event] = []

    def expect(self, training_id: str, event_type: str) -> asyncio.Future[tuple[float, Event]]:
        key = (training_id, event_type)
        future = self._waiting.setdefault(key, asyncio.get_running_loop().create_future())
        return future

    async def on_event(self, delivery: Delivery) -> None:
        now, event = time.perf_counter(), delivery.event
        self.events.append(event)
        if event.training_id is None:
            return
        future = self._waiting.get((event.training_id, event.type))
        if future is not None and not future.done():
            future.set_result((now, event))


def make_request(epochs: int, end_date: str, **overrides: object) -> TrainingRequested:
    cfg = load_strategy(STRATEGY)
    return TrainingRequested(
        training_id=f"bench-{uuid.uuid4().hex[:10]}",
        source="api",
        strategy_name=cfg.name,
        strategy=cfg.snapshot(),
        symbols=list(cfg.symbols),
        timeframes=list(cfg.timeframes),
        start_date="2017-01-01",
        end_date=end_date,
        overrides={"epochs": epochs, "early_stopping": None, **overrides},
        seed=42,
    )


def bare_request(event: TrainingRequested, models_dir: Path) -> TrainingRequest:
    return TrainingRequest(
        strategy=event.strategy,
        data_dir=ROOT / "data",
        models_dir=models_dir,
        symbols=event.symbols,
        timeframes=event.timeframes,
        start_date=event.start_date,
        end_date=event.end_date,
        overrides=event.overrides,
        seed=event.seed,
        device="cpu",
        training_id=event.training_id,
    )


class ThreadCpu:
    """train_strategy() that records, per training id, the CPU time of the thread it ran in
    (far less disturbed by other processes on a shared machine than wall-clock time) and its
    own wall time (the training thread's, without the request's fixed costs around it)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    def __call__(self, request: TrainingRequest, reporter=None, token=None, **options):
        started, began = time.thread_time(), time.perf_counter()
        try:
            return train_strategy(request, reporter, token, **options)
        finally:
            self.seconds[request.training_id or ""] = time.thread_time() - started
            self.wall[request.training_id or ""] = time.perf_counter() - began


THREAD_CPU = ThreadCpu()


@dataclass
class Sample:
    wall_s: float  # request in → terminal event out (bus: publish → Completed received)
    train_wall_s: float  # the training thread's train_strategy() call
    train_cpu_s: float  # CPU of the training thread
    process_cpu_s: float  # CPU of the whole process (trainer loop, publisher, client tap)


async def through_bus(client: EventBus, watcher: Watcher, event: TrainingRequested) -> Sample:
    completed = watcher.expect(event.training_id, "Completed")
    cpu, started = time.process_time(), time.perf_counter()
    await client.publish(event)
    finished, _ = await asyncio.wait_for(completed, 600)
    process = time.process_time() - cpu
    tid = event.training_id
    return Sample(finished - started, THREAD_CPU.wall[tid], THREAD_CPU.seconds[tid], process)


async def bare(
    event: TrainingRequested, models_dir: Path, adapters: bool = False, checkpoints: bool = False
) -> Sample:
    """train_strategy() in a thread; with `adapters`, through the trainer's EventReporter (its
    events dropped) and RunToken, but no bus: the adapters' own cost; with `checkpoints`, also
    the trainer's checkpoint sink on a filesystem artifact store (every epoch end)."""
    request = bare_request(event, models_dir)
    reporter, token, options = None, None, {}
    if adapters or checkpoints:
        envelope = RunEnvelope(event.training_id or "", "default", "trainer:bench", 1, None)
        reporter = EventReporter(envelope, lambda _event: None)
        token = RunToken(time.monotonic() + 3600)
    if checkpoints:
        store = FilesystemArtifactStore(models_dir / "artifacts")
        options["checkpoints"] = ArtifactCheckpoints(store, "default", request.training_id or "")
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.to_thread(THREAD_CPU, request, reporter, token, **options)
    if checkpoints:
        options["checkpoints"].flush()
        options["checkpoints"].discard()
    wall, process = time.perf_counter() - started, time.process_time() - cpu
    tid = request.training_id or ""
    return Sample(wall, THREAD_CPU.wall[tid], THREAD_CPU.seconds[tid], process)


async def overhead(client, watcher, models_dir: Path, epochs: int, repeats: int) -> None:
    make = lambda: make_request(epochs, "2017-12-31")  # noqa: E731
    await bare(make(), models_dir)  # warm-up: first-call costs (torch, TA-Lib) on both sides
    await through_bus(client, watcher, make())
    variants = {
        "bare train_strategy()": lambda: bare(make(), models_dir),
        "+ reporter/token only": lambda: bare(make(), models_dir, adapters=True),
        "+ checkpoints, no bus": lambda: bare(make(), models_dir, checkpoints=True),
        "bus trainer": lambda: through_bus(client, watcher, make()),
    }
    runs: dict[str, list[Sample]] = {name: [] for name in variants}
    order = list(variants)
    shuffle = random.Random(15)
    for _ in range(repeats):
        shuffle.shuffle(order)  # no variant always runs right after another
        for name in order:
            runs[name].append(await variants[name]())
    print(f"\n1. training through the bus vs bare train_strategy() ({epochs} epochs, EURUSD 1h")
    print(f"   2017), n={repeats} rounds, each variant once a round in shuffled order; medians,")
    print("   and in brackets the median of the per-round ratios to bare (one round's runs are")
    print("   seconds apart and see the same load from elsewhere; best: best over best)")
    print("   wall: request in → terminal event out; train wall / CPU: the training thread's")
    print("   train_strategy() call; process CPU: every thread of this process")
    columns = ("wall median", "wall best", "train wall", "train CPU", "process CPU")
    print(f"  {'':<22} " + " ".join(f"{c:>18}" for c in columns))
    baseline = runs["bare train_strategy()"]
    for name, samples in runs.items():
        cells = []
        for field in ("wall_s", "best", "train_wall_s", "train_cpu_s", "process_cpu_s"):
            if field == "best":
                value = min(s.wall_s for s in samples)
                ratio = value / min(s.wall_s for s in baseline)
            else:
                value = statistics.median(getattr(s, field) for s in samples)
                ratio = statistics.median(
                    getattr(s, field) / getattr(b, field)
                    for s, b in zip(samples, baseline, strict=True)
                )
            cells.append(f"{value:7.3f} s ({ratio - 1:+6.1%})")
        print(f"  {name:<22} " + " ".join(f"{c:>18}" for c in cells))
    fixed = statistics.median(
        s.wall_s - b for s, b in zip(runs["bus trainer"], _inside(watcher), strict=False)
    )
    print("  fixed cost per request (publish → Started → … → Completed received, minus the")
    print(f"  training's own duration): median {fixed * 1000:.1f} ms")


def _inside(watcher: Watcher) -> list[float]:
    """duration_s of each measured Completed, in order (the first is the warm-up)."""
    return [e.duration_s for e in watcher.events if e.type == "Completed"][1:]


async def cancel_latency(client, watcher, count: int) -> None:
    latencies, extra_batches = [], []
    for _ in range(count):
        event = make_request(500, "2017-03-31")
        first_batch = watcher.expect(event.training_id, "BatchProgress")
        cancelled = watcher.expect(event.training_id, "Cancelled")
        await client.publish(event)
        await asyncio.wait_for(first_batch, 120)
        seen = sum(1 for e in watcher.events if e.training_id == event.training_id)
        started = time.perf_counter()
        await client.publish(CancelRequested(training_id=event.training_id, source="bench"))
        finished, terminal = await asyncio.wait_for(cancelled, 120)
        latencies.append((finished - started) * 1000)
        after = [e for e in watcher.events if e.training_id == event.training_id][seen:]
        extra_batches.append(sum(1 for e in after if e.type == "BatchProgress"))
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"\n2. cancel → Cancelled latency over {count} cancels (mid-epoch)")
    if os.environ.get("KTRDR_BENCH_VERBOSE"):
        print("  all (ms):", " ".join(f"{v:.0f}" for v in ordered))
    print(
        f"  p50 {statistics.median(ordered):6.1f} ms   p99 {p99:6.1f} ms"
        f"   max {ordered[-1]:6.1f} ms"
        f"   (BatchProgress after the cancel: max {max(extra_batches)}, throttled at 250 ms)"
    )


def rabbit_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


async def main(args: argparse.Namespace) -> None:
    url = "memory://" if args.memory or not rabbit_reachable() else AMQP_URL
    prefix = f"bench.{uuid.uuid4().hex[:8]}."
    topology = Topology(prefix=prefix)
    threads = configure_threads(args.threads)
    kind = "in-memory bus" if url.startswith("memory") else f"RabbitMQ at {url.split('@')[-1]}"
    print(f"bus: {kind} (prefix {prefix}); torch threads {threads}; pid {os.getpid()}")
    watcher = Watcher()
    with tempfile.TemporaryDirectory() as tmp:
        settings = TrainerSettings(
            broker_url=url,
            topology_prefix=prefix,
            trainer_id="bench",
            device="cpu",
            models_dir=Path(tmp) / "bus",
            data_dir=ROOT / "data",
            heartbeat_interval_s=5,
        )
        try:
            await run(args, settings, topology, watcher, Path(tmp))
        finally:
            if not url.startswith("memory"):
                await delete_topology(url, topology)


async def run(
    args: argparse.Namespace,
    settings: TrainerSettings,
    topology: Topology,
    watcher: Watcher,
    tmp: Path,
) -> None:
    url = settings.broker_url
    async with open_stack(broker=settings) as stack:
        trainer_bus = stack.bus
        # The client is another connection on RabbitMQ; the in-memory bus is one broker per
        # object.
        client = trainer_bus if url.startswith("memory") else bus_from_url(url, topology)
        service = TrainerService(settings, trainer_bus, train_fn=THREAD_CPU)
        await client.start()
        # Only the terminal events: decoding every progress event in this process would be
        # the bench's own load on the training, not the trainer's.
        terminal = ["training.completed", "training.failed", "training.cancelled"]
        await client.tap(terminal, watcher.on_event)
        await service.start()
        try:
            if "overhead" in args.only:
                await overhead(client, watcher, tmp / "bare", args.epochs, args.repeats)
            if "cancel" in args.only:
                await client.tap(["training.batch_progress"], watcher.on_event)
                await cancel_latency(client, watcher, args.cancels)
        finally:
            await service.stop(grace_s=0)
            if client is not trainer_bus:
                await client.close()


async def delete_topology(url: str, topology: Topology) -> None:
    import aio_pika

    from libs.events.bus.amqp.topology import delete_topology as delete

    connection = await aio_pika.connect(url)
    await delete(await connection.channel(), topology)
    await connection.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", default=["overhead", "cancel"])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory", action="store_true", help="use the in-memory bus")
    asyncio.run(main(parser.parse_args()))
