"""`ktrdr events replay` and `ktrdr projections rebuild`, run as real subprocesses on SQLite."""

from __future__ import annotations

import json

import sqlalchemy as sa

from libs.events.db import make_engine
from libs.events.migrate import upgrade_engine
from libs.events.readmodels.trainings import trainings
from libs.events.store.sql import SqlEventStore
from tests.support.events import TrainingScript
from tests.support.ktrdr_cli import run_ktrdr


async def test_replay_and_rebuild_commands(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    engine = make_engine(url)
    await upgrade_engine(engine)
    s = TrainingScript("t-1")
    events = [s.requested(), *s.run(epochs=1, batches=2, version=5)]
    result = await SqlEventStore(engine).append(events)

    out = run_ktrdr(url, "events", "replay", "t-1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(events) + 1
    assert lines[0].split()[0] == str(result.positions[0]) and "TrainingRequested" in lines[0]
    assert "Completed" in lines[-2] and "neuro_mean_reversion/1d_v5" in lines[-2]
    assert lines[-1].endswith("completed (attempt 1, phase saving, epoch 1)")

    as_of = run_ktrdr(
        url, "events", "replay", "t-1", "--as-of", str(result.positions[1]), "--json", cwd=tmp_path
    )
    rows = [json.loads(line) for line in as_of.stdout.splitlines()]
    assert [r["event"]["type"] for r in rows] == ["TrainingRequested", "Started"]

    missing = run_ktrdr(url, "events", "replay", "nope", cwd=tmp_path)
    assert missing.returncode == 1 and "no events" in missing.stderr

    same = run_ktrdr(url, "projections", "rebuild", cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert "read models equal to the log" in same.stdout

    async with engine.begin() as conn:
        await conn.execute(sa.update(trainings).values(status="failed"))
    drift = run_ktrdr(url, "projections", "rebuild", "--json", cwd=tmp_path)
    assert drift.returncode == 1
    report = json.loads(drift.stdout)
    assert report["equal"] is False and report["differences"] == 1
    assert "t-1" in report["listed"][0] and "status" in report["listed"][0]

    fixed = run_ktrdr(url, "projections", "rebuild", "--swap", cwd=tmp_path)
    assert fixed.returncode == 0 and "replaced" in fixed.stdout
    assert (await SqlEventStore(engine).get_training("t-1")).status == "completed"
    await engine.dispose()
