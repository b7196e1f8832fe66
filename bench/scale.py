"""Scale benchmark: `.venv/bin/python bench/scale.py [--events N]` (default 200,000).

Do reads stay flat as the log grows? For each of two logs built in this run -- a small one
(1 % of N, the baseline) and one of N events (~100 events per training: 10 million events are
100,000 trainings) -- in a dedicated database created here and dropped afterwards:
  1. the log is generated server-side: one template per (strategy, outcome) is COPYed in, then
     `INSERT ... SELECT` over generate_series multiplies it into N events of interleaved
     trainings (secondary indexes dropped during the load and rebuilt after, as a bulk load does;
     the outbox relay's cursor set to the head: the log is history, its API events relayed);
  2. the read models are built by `rebuild(swap=True)`: the rebuild throughput, and its memory;
  3. a real `ktrdr api` process serves it; p50/p99 over HTTP of: list (first page, a deep page,
     a status filter deep), status, `as_of`, the event-log page, an SSE resume from an early
     position to the end of a finished training, and submit; each beside the raw asyncpg
     query of the same rows (the baseline);
  4. database size per million events, and each process's peak memory (VmHWM).
Prints figures and ratios; `--json PATH` writes them for bench/run_all. Needs the local
Postgres (KTRDR_BENCH_PG_URL: an admin database URL) and RabbitMQ (KTRDR_BENCH_AMQP) -- the API
connects to the broker (a unique topology prefix, deleted afterwards) to relay submits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from libs.events import catalog as ev  # noqa: E402
from libs.events.db import make_engine  # noqa: E402
from libs.events.migrate import upgrade_engine  # noqa: E402
from libs.events.notify.postgres import asyncpg_dsn  # noqa: E402
from libs.events.relay import DEFAULT_NAME as RELAY_NAME  # noqa: E402
from libs.events.store.rebuild import rebuild  # noqa: E402
from libs.events.store.rows import envelope_values  # noqa: E402
from libs.events.store.sql import SqlEventStore  # noqa: E402
from services.api.apikeys import generate_key  # noqa: E402
from services.cli.client.sse import SseParser  # noqa: E402
from tests.support.events import TrainingScript  # noqa: E402

ADMIN_URL = os.environ.get(
    "KTRDR_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
AMQP = os.environ.get("KTRDR_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
KTRDR = Path(sys.executable).parent / "ktrdr"
STRATEGY = ROOT / "tests" / "e2e" / "fixtures" / "e2e_tiny.yaml"
STRATEGIES = 7
OUTCOMES = ("completed", "completed", "failed", "cancelled")
TENANTS = 10
RUNNING_AT_ONCE = 50  # trainings whose events interleave in the log
CHUNK_TRAININGS = 5000  # trainings per INSERT ... SELECT
SAMPLES = 200


# --- the log -----------------------------------------------------------------------------------


def templates() -> list[list[ev.Event]]:
    """One training's events per (strategy, outcome): ~100 events each."""
    out = []
    for i in range(STRATEGIES * len(OUTCOMES)):
        script = TrainingScript("template", strategy=f"strategy_{i % STRATEGIES}", timeframe="1h")
        outcome = OUTCOMES[i // STRATEGIES]
        out.append([script.requested(), *script.run(epochs=10, batches=8, outcome=outcome)])
    return out


async def generate(dsn: str, trainings: int) -> tuple[int, float]:
    """(events, seconds): the log of `trainings` trainings, written server-side."""
    conn = await asyncpg.connect(dsn)
    began = time.perf_counter()
    try:
        await conn.execute(
            "CREATE UNLOGGED TABLE scale_template (tpl int, ord int, type text, "
            "schema_version int, source text, attempt int, seq bigint, correlation_id text, "
            "payload jsonb)"
        )
        rows = []
        for tpl, events in enumerate(templates()):
            for ord_, event in enumerate(events):
                envelope = envelope_values(event)
                rows.append(
                    (
                        tpl,
                        ord_,
                        event.type,
                        event.schema_version,
                        event.source,
                        event.attempt,
                        event.seq,
                        envelope[8],
                        json.dumps(ev.payload_of(event)),
                    )
                )
        await conn.copy_records_to_table("scale_template", records=rows)
        secondary = await _drop_secondary_indexes(conn)
        count = len(templates())
        for low in range(0, trainings, CHUNK_TRAININGS):
            high = min(trainings, low + CHUNK_TRAININGS) - 1
            await conn.execute(
                f"""
                INSERT INTO events (event_id, training_id, type, schema_version, tenant, source,
                                    attempt, seq, correlation_id, occurred_at, recorded_at, payload)
                SELECT gen_random_uuid(), 'scale-' || lpad(k::text, 7, '0'), t.type,
                       t.schema_version, 'tenant-' || (k % {TENANTS}), t.source, t.attempt, t.seq,
                       t.correlation_id, ts, ts, t.payload
                FROM generate_series($1::int, $2::int) k
                JOIN scale_template t ON t.tpl = k % {count},
                LATERAL (SELECT timestamptz '2026-01-01' + make_interval(
                    secs => k * 30 + t.ord * 0.25)) AS at(ts)
                ORDER BY k / {RUNNING_AT_ONCE}, t.ord, k
                """,
                low,
                high,
            )
        for statement in secondary:
            await conn.execute(statement)
        await conn.execute("DROP TABLE scale_template")
        await conn.execute("VACUUM ANALYZE events")
        total = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    return int(total), time.perf_counter() - began


async def admin_head(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(global_position), 0) FROM events"))
    finally:
        await conn.close()


async def _drop_secondary_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the events table's unique constraints and indexes other than the primary key;
    return the statements that recreate them."""
    recreate: list[str] = []
    for name, definition in await conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'events'::regclass AND contype = 'u'"
    ):
        await conn.execute(f'ALTER TABLE events DROP CONSTRAINT "{name}"')
        recreate.append(f'ALTER TABLE events ADD CONSTRAINT "{name}" {definition}')
    for name, definition in await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' "
        "AND schemaname = current_schema() AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = 'events'::regclass)"
    ):
        await conn.execute(f'DROP INDEX "{name}"')
        recreate.append(definition)
    return recreate


# --- measuring ---------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def timed(call: Callable[[], Awaitable[Any]], samples: int = SAMPLES) -> tuple[float, float]:
    """p50, p99 in milliseconds of `samples` sequential calls (after 5 warm-up calls)."""
    for _ in range(5):
        await call()
    out = []
    for _ in range(samples):
        began = time.perf_counter()
        await call()
        out.append((time.perf_counter() - began) * 1000)
    return percentiles(out)


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Api:
    """`ktrdr api` on the scale database, a unique topology prefix on the shared broker."""

    def __init__(self, url: str, work: Path) -> None:
        self.key = generate_key()
        self.prefix = f"scale.{uuid.uuid4().hex[:8]}."
        work.mkdir(parents=True, exist_ok=True)
        (work / "strategies").mkdir(exist_ok=True)
        shutil.copy(STRATEGY, work / "strategies" / "e2e_tiny.yaml")
        self.port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "PYTHONPATH": str(ROOT),
            "KTRDR_DATABASE_URL": url,
            "KTRDR_BROKER_URL": AMQP,
            "KTRDR_TOPOLOGY_PREFIX": self.prefix,
            "KTRDR_BOOTSTRAP_API_KEY": self.key,
            "KTRDR_STRATEGIES_DIR": str(work / "strategies"),
            "KTRDR_DATA_DIR": str(ROOT / "data"),
            "KTRDR_MODELS_DIR": str(work / "models"),
            "KTRDR_LOG_LEVEL": "WARNING",
        }
        self.log = (work / "api.log").open("wb")
        self.process = subprocess.Popen(
            [str(KTRDR), "api", "--port", str(self.port)],
            env=env,
            cwd=work,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=5) as client:
            for _ in range(600):
                if self.process.poll() is not None:
                    raise RuntimeError(f"ktrdr api exited with {self.process.returncode}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)  # nothing to wait on but the port
        raise RuntimeError("ktrdr api did not answer /healthz within 60 s")

    def stop(self) -> float:
        hwm = vm_hwm_mb(self.process.pid) if self.process.poll() is None else 0.0
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()
        return hwm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(api: Api, dsn: str, trainings: int) -> dict[str, Any]:
    rng = random.Random(15)
    conn = await asyncpg.connect(dsn)
    out: dict[str, Any] = {}
    try:
        ids = [f"scale-{k:07d}" for k in rng.sample(range(trainings), min(trainings, 500))]
        deep = await conn.fetchval(
            "SELECT first_position FROM trainings ORDER BY first_position DESC OFFSET $1 LIMIT 1",
            int(trainings * 0.9),
        )
        early: dict[str, tuple[int, int]] = {}  # id -> (second position, middle position)
        for training_id in ids[:100]:
            positions = await conn.fetch(
                "SELECT global_position FROM events WHERE training_id = $1 "
                "ORDER BY global_position",
                training_id,
            )
            early[training_id] = (positions[1][0], positions[len(positions) // 2][0])
        headers = {"Authorization": f"Bearer {api.key}"}
        async with httpx.AsyncClient(base_url=api.base, headers=headers, timeout=60) as client:

            def pick() -> str:
                return rng.choice(ids)

            def pick_early() -> str:
                return rng.choice(list(early))

            async def get(path: str, **params: Any) -> None:
                response = await client.get(path, params=params)
                assert response.status_code == 200, response.text

            async def sse_resume(first_only: bool = False) -> None:
                """Resume a finished training's stream from its second event: until the first
                event arrives, or the whole rest of it (~100 events, to its terminal one)."""
                training_id = pick_early()
                sse = {"accept": "text/event-stream", "Last-Event-ID": str(early[training_id][0])}
                parser, seen = SseParser(), 0
                path = f"/api/v1/trainings/{training_id}/events"
                async with client.stream("GET", path, headers=sse) as response:
                    assert response.status_code == 200
                    async for line in response.aiter_lines():
                        message = parser.feed(line)
                        if message is not None and message.event is not None:
                            seen += 1
                            if first_only:
                                return
                assert seen > 50, seen  # the whole rest of the training, to its terminal event

            async def submit() -> None:
                body = {
                    "strategy": "e2e_tiny",
                    "start_date": "2017-01-02",
                    "end_date": "2017-03-31",
                    "overrides": {"epochs": 1},
                }
                response = await client.post("/api/v1/trainings", json=body)
                assert response.status_code == 202, response.text

            cases: dict[str, Callable[[], Awaitable[Any]]] = {
                "list, first page": lambda: get("/api/v1/trainings", limit=50),
                "list, deep page (90 %)": lambda: get(
                    "/api/v1/trainings", limit=50, cursor=str(deep)
                ),
                "list, status=failed, deep": lambda: get(
                    "/api/v1/trainings", limit=50, status="failed", cursor=str(deep)
                ),
                "status": lambda: get(f"/api/v1/trainings/{pick()}"),
                "as_of (mid-run)": lambda: _as_of(get, early, rng),
                "event-log page (200)": lambda: get(
                    f"/api/v1/trainings/{pick()}/events", after=0, limit=200
                ),
                "SSE resume, first event": lambda: sse_resume(first_only=True),
                "SSE resume, early position": sse_resume,
                "submit": submit,
            }
            for name, call in cases.items():
                samples = 50 if name in ("SSE resume, early position", "submit") else SAMPLES
                out[name] = await timed(call, samples)
        # Baselines: the same rows straight from asyncpg, on one open connection.
        out["raw: trainings page"] = await timed(
            lambda: conn.fetch("SELECT * FROM trainings ORDER BY first_position DESC LIMIT 51")
        )
        out["raw: one training"] = await timed(
            lambda: conn.fetch("SELECT * FROM trainings WHERE training_id = $1", rng.choice(ids))
        )
        out["raw: event page"] = await timed(
            lambda: conn.fetch(
                "SELECT * FROM events WHERE training_id = $1 AND global_position > 0 "
                "ORDER BY global_position LIMIT 200",
                rng.choice(ids),
            )
        )
    finally:
        await conn.close()
    return out


async def _as_of(get: Callable[..., Awaitable[None]], early: dict, rng: random.Random) -> None:
    training_id = rng.choice(list(early))
    await get(f"/api/v1/trainings/{training_id}", as_of=early[training_id][1])


async def one_scale(events_wanted: int, work: Path) -> dict[str, Any]:
    # The templates average ~100 events a training (the first, a completed run, is the
    # longest): 10 million events are 100,000 trainings and the log gets at least N events.
    trainings = max(100, -(-events_wanted // 100))
    name = f"ktrdr_scale_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(ADMIN_URL))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    dsn = asyncpg_dsn(url)
    out: dict[str, Any] = {"trainings": trainings}
    engine = make_engine(url)
    api: Api | None = None
    try:
        await upgrade_engine(engine)
        out["events"], out["generate_s"] = await generate(dsn, trainings)
        out["events_head"] = await admin_head(dsn)
        store = SqlEventStore(engine)
        # The generated log is history: its API events went out on the bus long ago. Without
        # this the API's outbox relay would publish all of them while the reads are measured.
        await store.set_relay_cursor(RELAY_NAME, out["events_head"])
        report = await rebuild(store, swap=True)
        out["rebuild_events_per_s"] = report.events_per_s
        out["rebuild_s"] = report.seconds
        out["rebuild_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("VACUUM ANALYZE")
            # Write the bulk load's dirty pages now, not in the background while reads are timed.
            await conn.execute("CHECKPOINT")
            out["db_bytes"] = await conn.fetchval("SELECT pg_database_size(current_database())")
            out["events_bytes"] = await conn.fetchval("SELECT pg_total_relation_size('events')")
        finally:
            await conn.close()
        api = Api(url, work)
        await api.ready()
        out["latency_ms"] = await measure(api, dsn, trainings)
    finally:
        if api is not None:
            out["api_peak_rss_mb"] = api.stop()
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if api is not None:
            await _delete_topology(api.prefix)
    return out


async def _delete_topology(prefix: str) -> None:
    import aio_pika

    from libs.events.bus.amqp.topology import delete_topology
    from libs.events.bus.topology import Topology

    connection = await aio_pika.connect(AMQP)
    try:
        await delete_topology(await connection.channel(), Topology(prefix=prefix))
    finally:
        await connection.close()


def report(small: dict[str, Any], big: dict[str, Any]) -> list[str]:
    lines = [
        f"logs: {small['events']:,} events / {small['trainings']:,} trainings (baseline) and "
        f"{big['events']:,} events / {big['trainings']:,} trainings",
        f"generate: {big['generate_s']:.1f} s ({big['events'] / big['generate_s']:,.0f} events/s)",
        f"rebuild: {big['rebuild_events_per_s']:,.0f} events/s (whole rebuild incl. swap "
        f"{big['rebuild_s']:.1f} s; small log {small['rebuild_events_per_s']:,.0f} events/s)",
        f"database size: {big['db_bytes'] / big['events'] * 1e6 / 2**20:,.0f} MiB per million "
        f"events (events table {big['events_bytes'] / big['events'] * 1e6 / 2**20:,.0f} MiB)",
        f"peak memory: api {big['api_peak_rss_mb']:.0f} MiB (small log "
        f"{small['api_peak_rss_mb']:.0f}); bench process incl. rebuild "
        f"{big['rebuild_peak_rss_mb']:.0f} MiB",
        f"{'request':<30} {'small p50/p99 ms':>18} {'large p50/p99 ms':>18} {'p50 ratio':>9}",
    ]
    for name, (p50, p99) in big["latency_ms"].items():
        s50, s99 = small["latency_ms"][name]
        lines.append(
            f"{name:<30} {s50:>8.2f} /{s99:>8.2f} {p50:>8.2f} /{p99:>8.2f} {p50 / s50:>8.2f}x"
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    with tempfile.TemporaryDirectory(prefix="ktrdr-scale-") as tmp:
        small = await one_scale(args.events // 100, Path(tmp) / "small")
        big = await one_scale(args.events, Path(tmp) / "large")
    for line in report(small, big):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"small": small, "large": big}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
