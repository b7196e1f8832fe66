"""GET /trainings (filters, cursor pagination), GET /trainings/{id} (+ as_of), cancel."""

from __future__ import annotations

from libs.events.catalog import Cancelled, CancelRequested
from tests.unit.api.conftest import Api, requested, tiny_run


async def test_list_paginates_newest_first_without_overlap(api: Api) -> None:
    ids = [await requested(api.store) for _ in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get("/api/v1/trainings", params=params)).json()
        seen += [item["training_id"] for item in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3


async def test_list_filters_by_status_and_strategy(api: Api) -> None:
    done = await requested(api.store)
    await api.store.append(tiny_run(done, epochs=2, batches=2))
    queued = await requested(api.store, strategy="other")
    page = (await api.client.get("/api/v1/trainings", params={"status": "completed"})).json()
    assert [i["training_id"] for i in page["items"]] == [done]
    page = (await api.client.get("/api/v1/trainings", params={"strategy": "other"})).json()
    assert [i["training_id"] for i in page["items"]] == [queued]
    r = await api.client.get("/api/v1/trainings", params={"status": "sleeping"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    r = await api.client.get("/api/v1/trainings", params={"cursor": "zz"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"


async def test_other_tenants_trainings_are_invisible(api: Api) -> None:
    theirs = await requested(api.store, tenant="acme")
    assert (await api.client.get(f"/api/v1/trainings/{theirs}")).status_code == 404
    page = (await api.client.get("/api/v1/trainings")).json()
    assert page["items"] == []


async def test_read_model_fields_and_as_of(api: Api) -> None:
    tid = await requested(api.store)
    events = tiny_run(tid, epochs=2, batches=2)
    await api.store.append(events)
    view = (await api.client.get(f"/api/v1/trainings/{tid}")).json()
    assert view["status"] == "completed"
    assert (view["epoch"], view["total_epochs"]) == (2, 2)
    assert view["model"]["version"] == 1 and view["attempt"] == 1
    assert view["trainer_id"] == "t1" and view["device"]["type"] == "cpu"
    assert view["best_metrics"] and view["finished_at"]
    log = await api.store.read_stream(tid)
    assert view["position"] == log[-1].position
    # Log bookkeeping and the submitter's Idempotency-Key stay inside the service.
    assert {"first_position", "last_position", "idempotency_key"}.isdisjoint(view)
    # As of the first BatchProgress: running, in the training phase, epoch 1 batch 1.
    first_batch = next(s for s in log if s.event.type == "BatchProgress")
    then = (
        await api.client.get(f"/api/v1/trainings/{tid}", params={"as_of": first_batch.position})
    ).json()
    assert then["status"] == "running" and then["phase"] == "training"
    assert (then["epoch"], then["batch"]) == (1, 1)
    assert then["position"] == first_batch.position
    r = await api.client.get(f"/api/v1/trainings/{tid}", params={"as_of": 0})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "as_of"


async def test_unknown_training_is_a_404_problem(api: Api) -> None:
    r = await api.client.get("/api/v1/trainings/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_cancel_of_a_running_training_is_cooperative_and_appended_once(api: Api) -> None:
    tid = await requested(api.store)
    await api.store.append(tiny_run(tid, epochs=2, batches=2, outcome="none"))
    r = await api.client.post(f"/api/v1/trainings/{tid}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "cancelling"
    r = await api.client.post(f"/api/v1/trainings/{tid}/cancel", json={"reason": "again"})
    assert r.status_code == 202
    stream = [s.event for s in await api.store.read_stream(tid)]
    cancels = [e for e in stream if isinstance(e, CancelRequested)]
    assert len(cancels) == 1 and cancels[0].source == "api"
    assert not any(isinstance(e, Cancelled) for e in stream)  # the trainer says when it stopped
    assert (await api.client.get(f"/api/v1/trainings/{tid}")).json()["status"] == "cancelling"


async def test_cancel_of_a_queued_training_is_final_at_once(api: Api) -> None:
    tid = await requested(api.store)
    r = await api.client.post(f"/api/v1/trainings/{tid}/cancel", json={"reason": "not needed"})
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    stream = [s.event for s in await api.store.read_stream(tid)]
    assert [e.type for e in stream] == ["TrainingRequested", "CancelRequested", "Cancelled"]
    assert stream[-1].source == "api" and stream[-1].reason == "not needed"
    assert stream[-1].phase is None
    view = (await api.client.get(f"/api/v1/trainings/{tid}")).json()
    assert view["status"] == "cancelled" and view["started_at"] is None
    # A trainer that dequeues it later changes nothing: its events fold into nothing.
    await api.store.append(tiny_run(tid, epochs=2, batches=2))
    assert (await api.client.get(f"/api/v1/trainings/{tid}")).json()["status"] == "cancelled"
    r = await api.client.post(f"/api/v1/trainings/{tid}/cancel")
    assert r.status_code == 409


async def test_the_api_events_of_a_training_carry_a_monotonic_seq(api: Api) -> None:
    r = await api.client.post("/api/v1/trainings", json={"strategy": "tiny_rsi"})
    tid = r.json()["training_id"]
    await api.client.post(f"/api/v1/trainings/{tid}/cancel")
    api_events = [s.event for s in await api.store.read_stream(tid) if s.event.source == "api"]
    assert [(e.type, e.seq) for e in api_events] == [
        ("TrainingRequested", 0),
        ("CancelRequested", 1),
        ("Cancelled", 2),  # never started: the API closes it at once
    ]


async def test_cancel_terminal_is_409_and_unknown_404(api: Api) -> None:
    tid = await requested(api.store)
    await api.store.append(tiny_run(tid, epochs=2, batches=2))
    r = await api.client.post(f"/api/v1/trainings/{tid}/cancel")
    assert r.status_code == 409 and "completed" in r.json()["detail"]
    assert (await api.client.post("/api/v1/trainings/nope/cancel")).status_code == 404


async def test_the_verdict_and_intervals_of_completed_are_served(api: Api) -> None:
    """test_metrics is a free dict in Completed: the verdict, the baselines and the bootstrap
    intervals the pipeline puts there reach GET /trainings/{id} unchanged."""
    tid = await requested(api.store)
    events = tiny_run(tid, epochs=1, batches=1)
    completed = events[-1]
    assert completed.type == "Completed"
    test_metrics = {
        "accuracy": 0.52,
        "skill": False,
        "verdict": "evidence of skill at 95 %: no (accuracy 0.520 − best baseline ...)",
        "bootstrap": {"accuracy_minus_best_baseline": [-0.03, 0.05], "sharpe": [-1.2, 2.1]},
        "baselines": {"momentum": {"accuracy": 0.5, "trading": {"sharpe": 0.3}}},
    }
    events[-1] = completed.model_copy(update={"test_metrics": test_metrics})
    await api.store.append(events)
    view = (await api.client.get(f"/api/v1/trainings/{tid}")).json()
    assert view["test_metrics"] == test_metrics
