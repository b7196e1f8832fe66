"""Event store benchmark: `.venv/bin/python bench/events.py [--trainings N]`.

In one run, on a throwaway Postgres database (created and dropped here):
  1. batched append (no fold) vs raw asyncpg `executemany` of the same rows (the baseline);
  2. append + fold (what the projector does), in batches and one event per append;
  3. rebuild of the read models from the whole log (target >= 100k events/s);
  4. the same rebuild on SQLite, for comparison.
Prints rates and ratios, never pass/fail. KTRDR_BENCH_PG_URL picks the server (admin database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.events import catalog as ev  # noqa: E402
from libs.events.db import make_engine  # noqa: E402
from libs.events.migrate import upgrade_engine  # noqa: E402
from libs.events.notify.postgres import asyncpg_dsn  # noqa: E402
from libs.events.store.rebuild import rebuild  # noqa: E402
from libs.events.store.rows import ENVELOPE_COLUMNS, envelope_values  # noqa: E402
from libs.events.store.sql import SqlEventStore  # noqa: E402
from tests.support.events import TrainingScript  # noqa: E402

ADMIN_URL = os.environ.get(
    "KTRDR_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
BATCH = 500
COLUMNS = ", ".join([*ENVELOPE_COLUMNS, "recorded_at", "payload"])


def make_log(trainings: int) -> list[ev.Event]:
    events: list[ev.Event] = []
    for i in range(trainings):
        s = TrainingScript(f"bench-{i:05d}", strategy=f"strategy_{i % 7}")
        outcome = ("completed", "completed", "failed", "cancelled")[i % 4]
        events += [s.requested(), *s.run(epochs=10, batches=100, outcome=outcome, version=i + 1)]
    return events


def raw_row(e: ev.Event, now: datetime) -> tuple:
    return (*envelope_values(e), now, json.dumps(ev.payload_of(e)))


def batches(events: list[ev.Event], size: int):
    for start in range(0, len(events), size):
        yield events[start : start + size]


async def bench_raw(dsn: str, events: list[ev.Event]) -> float:
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
    sql = f"INSERT INTO raw_events ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"
    began = time.perf_counter()
    for chunk in batches(events, BATCH):
        now = datetime.now(UTC)
        async with conn.transaction():
            await conn.executemany(sql, [raw_row(e, now) for e in chunk])
    elapsed = time.perf_counter() - began
    await conn.close()
    return len(events) / elapsed


async def latencies_ms(dsn: str) -> tuple[float, float]:
    """Median SELECT 1 round trip and median durable one-row commit (WAL fsync): what a
    single-event append is made of here."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE commit_probe (a int)")
    round_trips, commits = [], []
    for _ in range(100):
        began = time.perf_counter()
        await conn.fetchval("SELECT 1")
        round_trips.append(time.perf_counter() - began)
        began = time.perf_counter()
        await conn.execute("INSERT INTO commit_probe VALUES (1)")
        commits.append(time.perf_counter() - began)
    await conn.execute("DROP TABLE commit_probe")
    await conn.close()
    return sorted(round_trips)[50] * 1000, sorted(commits)[50] * 1000


async def bench_append(
    store: SqlEventStore, events: list[ev.Event], *, fold: bool, size: int
) -> float:
    began = time.perf_counter()
    for chunk in batches(events, size):
        await store.append(chunk, fold=fold)
    return len(events) / (time.perf_counter() - began)


async def clear(engine) -> None:
    async with engine.begin() as conn:
        for table in ("models", "training_epochs", "trainings", "events"):
            await conn.execute(sa.text(f"DELETE FROM {table}"))


async def postgres_part(events: list[ev.Event]) -> dict[str, float]:
    name = f"ktrdr_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    try:
        await upgrade_engine(engine)
        store = SqlEventStore(engine)
        rtt_ms, commit_ms = await latencies_ms(asyncpg_dsn(url))
        out = {"rtt_ms": rtt_ms, "commit_ms": commit_ms}
        out["raw"] = await bench_raw(asyncpg_dsn(url), events)
        out["append"] = await bench_append(store, events, fold=False, size=BATCH)
        await clear(engine)
        single = events[: min(3000, len(events))]
        out["fold_single"] = await bench_append(store, single, fold=True, size=1)
        await clear(engine)
        out["fold_batch"] = await bench_append(store, events, fold=True, size=BATCH)
        cpu = time.process_time()
        report = await rebuild(store)
        out["rebuild_cpu_us"] = (time.process_time() - cpu) / max(report.events, 1) * 1e6
        out["rebuild"] = report.events_per_s
        out["rebuild_equal"] = report.equal
        out["rebuild_total_s"] = report.seconds
        return out
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def sqlite_part(events: list[ev.Event]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp}/bench.db")
        try:
            await upgrade_engine(engine)
            store = SqlEventStore(engine)
            out = {"fold_batch": await bench_append(store, events, fold=True, size=BATCH)}
            report = await rebuild(store)
            out["rebuild"] = report.events_per_s
            out["rebuild_equal"] = report.equal
            return out
        finally:
            await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainings", type=int, default=100, help="~1,030 events each")
    args = parser.parse_args()
    events = make_log(args.trainings)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"log: {len(events):,} events, {args.trainings} trainings; batches of {BATCH}; "
        f"{os.cpu_count()} CPUs, load average {load} (rates are wall-clock, Postgres included)"
    )
    pg = await postgres_part(events)
    print("Postgres")
    print(f"  raw asyncpg executemany          {pg['raw']:>10,.0f} events/s  (baseline)")
    print(
        f"  store.append, no fold            {pg['append']:>10,.0f} events/s  "
        f"ratio {pg['append'] / pg['raw']:.2f}x baseline"
    )
    print(
        f"  store.append + fold, batched     {pg['fold_batch']:>10,.0f} events/s  "
        f"ratio {pg['fold_batch'] / pg['raw']:.2f}x baseline"
    )
    print(
        f"  store.append + fold, 1 per tx    {pg['fold_single']:>10,.0f} events/s  "
        f"({1000 / pg['fold_single']:.2f} ms per append: 3 round trips of "
        f"{pg['rtt_ms']:.2f} ms + a durable commit of {pg['commit_ms']:.2f} ms here)"
    )
    print(
        f"  rebuild (read+decode+fold)       {pg['rebuild']:>10,.0f} events/s  "
        f"target 100,000 -> {pg['rebuild'] / 100_000:.2f}x; equal to live: {pg['rebuild_equal']}; "
        f"whole rebuild incl. compare {pg['rebuild_total_s']:.2f}s"
    )
    print(
        f"    this process's CPU: {pg['rebuild_cpu_us']:.1f} us/event "
        f"(= {1e6 / pg['rebuild_cpu_us']:,.0f} events/s of client CPU; the server renders JSONB "
        "in parallel)"
    )
    lite = await sqlite_part(events)
    print("SQLite")
    print(f"  store.append + fold, batched     {lite['fold_batch']:>10,.0f} events/s")
    print(
        f"  rebuild (read+decode+fold)       {lite['rebuild']:>10,.0f} events/s  "
        f"ratio {lite['rebuild'] / pg['rebuild']:.2f}x Postgres; equal: {lite['rebuild_equal']}"
    )


if __name__ == "__main__":
    asyncio.run(main())
