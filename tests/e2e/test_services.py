"""The service as a user runs it: `ktrdr api`, `ktrdr projector` and two `ktrdr trainer`s as
real processes on the real Postgres + RabbitMQ, driven over HTTP like any client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from libs.pipeline.progress import PHASES
from tests.e2e.conftest import TRAINERS, Cluster
from tests.e2e.harness import Sse, SseReader, history, submit
from tests.support.auth import AUTH

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RUN_S = 180.0  # deadline for one small training on a busy machine


@pytest.fixture
async def client(cluster: Cluster):
    async with httpx.AsyncClient(headers=AUTH, base_url=cluster.api_url, timeout=30) as client:
        yield client


async def test_a_training_streams_every_event_and_its_model_predicts(client, cluster):
    training_id = await submit(client, epochs=3)
    async with SseReader(client, f"/api/v1/trainings/{training_id}/events") as sse:
        events = await _to_end(sse, cluster)

    types = [e.event for e in events]
    assert types[0] == "TrainingRequested" and types[-1] == "Completed", types
    assert types.index("Started") < types.index("PhaseStarted")
    assert [e.data["phase"] for e in events if e.event == "PhaseStarted"] == list(PHASES)
    assert any(e.event == "BatchProgress" for e in events)
    assert [e.data["epoch"] for e in events if e.event == "EpochCompleted"] == [1, 2, 3]
    _assert_increasing(events)

    view = (await client.get(f"/api/v1/trainings/{training_id}")).json()
    started, completed = _one(events, "Started"), _one(events, "Completed")
    assert view["status"] == "completed" and view["position"] == events[-1].id
    assert (view["epoch"], view["total_epochs"], view["progress"]) == (3, 3, 1.0)
    assert view["attempt"] == 1 and view["trainer_id"] == started.data["trainer_id"]
    assert view["model"] == completed.data["model"]
    logged = await history(client, training_id)
    assert [e["position"] for e in logged] == [e.id for e in events]

    model = completed.data["model"]
    version = f"{model['timeframe']}_v{model['version']}"
    # The trainer's copy is in the submitting key's tenant's tree ("default": the bootstrap
    # admin's); the registry's version is the one allocated in the artifact store.
    tenant_tree = cluster.models_dir / "tenants" / "default" / model["strategy"]
    assert Path(model["path"]).parent == tenant_tree
    assert (
        model["artifact"]["key"]
        == f"models/default/{model['strategy']}/{model['timeframe']}/v{model['version']}.tar"
    )
    listed = (await client.get("/api/v1/models")).json()["items"]
    assert {"tenant": "default", "name": version} in [
        {"tenant": i["tenant"], "name": i["name"]} for i in listed
    ]
    response = await client.post(
        f"/api/v1/models/{model['strategy']}/{version}/predict",
        json={"symbol": "EURUSD", "bars": 5},
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 5
    for row in predictions:
        assert row["signal"] in {"BUY", "HOLD", "SELL"}
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


async def test_cancel_mid_run_ends_cancelled(client, cluster):
    training_id = await submit(client, epochs=500)  # minutes, unless cancelled
    async with SseReader(client, f"/api/v1/trainings/{training_id}/events") as sse:
        await _until(sse, cluster, lambda e: e.event == "BatchProgress")
        response = await client.post(
            f"/api/v1/trainings/{training_id}/cancel", json={"reason": "e2e cancel"}
        )
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "cancelling"
        events = await _to_end(sse, cluster)

    assert events[-1].event == "Cancelled", [e.event for e in events[-5:]]
    assert "CancelRequested" in [e.event for e in events]
    assert not any(e.event in ("Completed", "Failed") for e in events)
    view = (await client.get(f"/api/v1/trainings/{training_id}")).json()
    assert view["status"] == "cancelled"
    again = await client.post(f"/api/v1/trainings/{training_id}/cancel", json={})
    assert again.status_code == 409


async def test_sse_resumes_with_last_event_id_without_gap_or_duplicate(client, cluster):
    # Two at once: each trainer (concurrency 1) takes one.
    first = await submit(client, epochs=4)
    second = await submit(client, epochs=4)
    path = f"/api/v1/trainings/{first}/events"
    async with SseReader(client, path) as sse:
        await _until(sse, cluster, lambda e: e.event == "EpochCompleted")
        before = list(sse.received)  # the client goes away mid-run
    assert not any(e.event == "Completed" for e in before)
    async with SseReader(client, path, last_event_id=before[-1].id) as sse:
        after = await _to_end(sse, cluster)

    assert after[0].id > before[-1].id
    union = before + after
    _assert_increasing(union)
    logged = await history(client, first)
    assert [e.id for e in union] == [e["position"] for e in logged]  # no gap, no duplicate
    assert union[-1].event == "Completed"
    assert [e.data["epoch"] for e in after if e.event == "EpochCompleted"] == [2, 3, 4]

    async with SseReader(client, f"/api/v1/trainings/{second}/events") as sse:
        other = await _to_end(sse, cluster)
    trainers = {
        _one(union, "Started").data["trainer_id"],
        _one(other, "Started").data["trainer_id"],
    }
    assert trainers == set(TRAINERS), "the two trainings should have run on the two trainers"


# --- helpers -------------------------------------------------------------------------------------


async def _to_end(sse: SseReader, cluster: Cluster) -> list[Sse]:
    try:
        return await sse.to_end(RUN_S)
    except TimeoutError:
        raise AssertionError(
            f"stream did not end: {sse.types()[-8:]}\n{cluster.diagnose()}"
        ) from None


async def _until(sse: SseReader, cluster: Cluster, predicate) -> Sse:
    try:
        return await sse.until(predicate, RUN_S)
    except TimeoutError:
        raise AssertionError(
            f"awaited event never came: {sse.types()[-8:]}\n{cluster.diagnose()}"
        ) from None


def _one(events: list[Sse], kind: str) -> Sse:
    found = [e for e in events if e.event == kind]
    assert len(found) == 1, f"{len(found)} {kind} events"
    return found[0]


def _assert_increasing(events: list[Sse]) -> None:
    ids = [e.id for e in events]
    assert ids == sorted(set(ids)), "positions must strictly increase"
    assert all(e.data["position"] == e.id for e in events)
