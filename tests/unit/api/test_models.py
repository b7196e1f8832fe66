"""The model registry over the API: GET /models, GET /models/{strategy}/{version} (and
/download), aliases, deletions and predictions, on a model trained once by a tiny
train_strategy run (one epoch of a one-indicator strategy on four months of data), published to
the API's artifact store and announced by a `Completed` -- what a trainer does."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

import pytest
import yaml

from libs.events import catalog as ev
from libs.pipeline.pipeline import train_strategy
from libs.pipeline.request import TrainingRequest
from libs.pipeline.storage.bundle import model_key, publish_model
from tests.support.events import TrainingScript
from tests.unit.api.conftest import FIXTURES, REPO, Api


@pytest.fixture(scope="module")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    strategy = yaml.safe_load((FIXTURES / "tiny_rsi.yaml").read_text())
    train_strategy(
        TrainingRequest(
            strategy=strategy,
            data_dir=REPO / "data",
            models_dir=models,
            start_date="2017-09-01",
            overrides={"epochs": 1},
            seed=3,
            device="cpu",
        )
    )
    return models


async def add_model(api: Api, trained_models: Path, tenant: str = "default") -> ev.Completed:
    """What a trainer does for one training of tiny_rsi: publish the model to the artifact
    store (the next free version), then announce it in Completed."""
    store = api.app.state.components.artifacts
    published = publish_model(
        store,
        trained_models / "tiny_rsi" / "1h_v1",
        tenant=tenant,
        strategy="tiny_rsi",
        timeframe="1h",
    )
    info = published.artifact
    model = ev.ModelRef(
        strategy="tiny_rsi",
        timeframe="1h",
        version=published.version,
        path="on/the/trainer/tiny_rsi/1h_v1",
        sha256="ab" * 32,
        bytes=1,
        artifact=ev.ArtifactRef(key=info.key, uri=info.uri, size=info.size, sha256=info.sha256),
        lineage={"tenant": tenant, "seed": 3, "symbols": ["EURUSD"]},
    )
    script = TrainingScript(str(uuid.uuid4()), tenant=tenant, strategy="tiny_rsi", timeframe="1h")
    completed = script.completed(model=model)
    await api.store.append(
        [script.requested(strategy={}, symbols=["EURUSD"]), script.started(), completed]
    )
    return completed


@pytest.fixture
async def with_model(api: Api, trained_models: Path) -> ev.Completed:
    return await add_model(api, trained_models)


async def test_list_get_and_download_a_published_model(api: Api, with_model: ev.Completed) -> None:
    artifact = with_model.model.artifact
    assert artifact is not None
    (item,) = (await api.client.get("/api/v1/models")).json()["items"]
    assert (item["tenant"], item["strategy"], item["name"], item["version"]) == (
        "default",
        "tiny_rsi",
        "1h_v1",
        1,
    )
    assert item["latest"] is True and item["aliases"] == ["latest"]
    assert item["artifact"]["sha256"] == artifact.sha256
    assert item["lineage"]["seed"] == 3
    assert item["links"]["download"] == "/api/v1/models/tiny_rsi/1h_v1/download"
    for version in ("1h_v1", "latest", "1h_latest", "v1", "1"):
        r = await api.client.get(f"/api/v1/models/tiny_rsi/{version}")
        assert r.status_code == 200, (version, r.text)
        body = r.json()
        assert body["version"] == "1h_v1" and body["features"]["count"] > 0
        assert body["config"]["name"] == "tiny_rsi" and body["tenant"] == "default"
        assert body["training_id"] == with_model.training_id
    download = await api.client.get("/api/v1/models/tiny_rsi/latest/download")
    assert download.status_code == 200
    assert download.headers["x-checksum-sha256"] == artifact.sha256
    assert hashlib.sha256(download.content).hexdigest() == artifact.sha256
    assert len(download.content) == artifact.size
    # The API read the model from the store, not from any models folder of its own.
    assert not (api.settings.models_dir / "tenants").exists()


async def test_an_artifact_without_its_completed_is_not_listed(
    api: Api, trained_models: Path
) -> None:
    publish_model(
        api.app.state.components.artifacts,
        trained_models / "tiny_rsi" / "1h_v1",
        tenant="default",
        strategy="tiny_rsi",
        timeframe="1h",
    )
    assert (await api.client.get("/api/v1/models")).json()["items"] == []
    assert (await api.client.get("/api/v1/models/tiny_rsi/latest")).status_code == 404


async def test_versions_are_allocated_in_the_store(api: Api, trained_models: Path) -> None:
    first = await add_model(api, trained_models)
    second = await add_model(api, trained_models)
    other_tenant = await add_model(api, trained_models, tenant="acme")
    assert (first.model.version, second.model.version, other_tenant.model.version) == (1, 2, 1)
    assert second.model.artifact is not None
    assert second.model.artifact.key == model_key("default", "tiny_rsi", "1h", 2)


async def test_aliases_set_move_remove_and_default_predict(api: Api, trained_models: Path) -> None:
    first = await add_model(api, trained_models)
    await add_model(api, trained_models)
    body = {"symbol": "EURUSD", "bars": 2}
    # Neither version nor alias, no champion: latest, and the answer says so.
    r = await api.client.post("/api/v1/models/tiny_rsi/predict", json=body)
    assert r.status_code == 200, r.text
    resolved = r.json()["resolved"]
    assert (resolved["name"], resolved["via"]) == ("1h_v2", "latest (default)")
    assert "no champion set" in resolved["note"]
    # champion -> v1: the default follows it.
    r = await api.client.put("/api/v1/models/tiny_rsi/aliases/champion", json={"version": "v1"})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["previous_version"]) == (1, None)
    r = await api.client.post("/api/v1/models/tiny_rsi/predict", json=body)
    resolved = r.json()["resolved"]
    assert (resolved["name"], resolved["via"], resolved["alias"]) == (
        "1h_v1",
        "champion (default)",
        "champion",
    )
    assert r.json()["version"] == "1h_v1"
    # The alias in the path, in the body, and in the listing.
    r = await api.client.post("/api/v1/models/tiny_rsi/champion/predict", json=body)
    assert r.status_code == 200 and r.json()["resolved"]["via"] == "alias"
    r = await api.client.post("/api/v1/models/tiny_rsi/predict", json={**body, "version": "latest"})
    assert r.json()["resolved"]["name"] == "1h_v2"
    items = {i["name"]: i for i in (await api.client.get("/api/v1/models")).json()["items"]}
    assert items["1h_v1"]["aliases"] == ["champion"]
    assert items["1h_v2"]["aliases"] == ["latest"]
    # Move it to v2, then remove it: the default falls back to latest.
    r = await api.client.put("/api/v1/models/tiny_rsi/aliases/champion", json={"version": "2"})
    assert r.json()["previous_version"] == 1
    assert (await api.client.get("/api/v1/models/tiny_rsi/champion")).json()["version"] == "1h_v2"
    assert (await api.client.delete("/api/v1/models/tiny_rsi/aliases/champion")).status_code == 204
    assert (await api.client.get("/api/v1/models/tiny_rsi/champion")).status_code == 404
    r = await api.client.post("/api/v1/models/tiny_rsi/predict", json=body)
    assert r.json()["resolved"]["via"] == "latest (default)"
    # Audited: the alias events are in the log, on the streams of the versions concerned.
    log = await api.client.get(f"/api/v1/trainings/{first.training_id}/events")
    assert [e["type"] for e in log.json()["events"]][-1] == "ModelAliasSet"
    assert (await api.client.delete("/api/v1/models/tiny_rsi/aliases/champion")).status_code == 404


@pytest.mark.parametrize("alias", ["latest", "v3", "Champion", "a_b", "-x"])
async def test_bad_alias_names_are_refused(api: Api, with_model: ev.Completed, alias: str) -> None:
    r = await api.client.put(f"/api/v1/models/tiny_rsi/aliases/{alias}", json={"version": "v1"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "alias"


async def test_readers_cannot_set_aliases(api: Api, with_model: ev.Completed) -> None:
    reader = await api.client_as("reader")
    r = await reader.put("/api/v1/models/tiny_rsi/aliases/champion", json={"version": "v1"})
    assert r.status_code == 403


async def test_another_tenant_cannot_list_read_download_or_predict(
    api: Api, with_model: ev.Completed
) -> None:
    other = await api.client_as("trainer-user", tenant="acme")
    assert (await other.get("/api/v1/models")).json()["items"] == []
    assert (await other.get("/api/v1/models?tenant=default")).json()["items"] == []
    for path in (
        "/api/v1/models/tiny_rsi/latest",
        "/api/v1/models/tiny_rsi/1h_v1/download",
        "/api/v1/models/tiny_rsi/1h_v1?tenant=default",
    ):
        r = await other.get(path)
        assert r.status_code == 404, path
    body = {"symbol": "EURUSD", "bars": 2}
    assert (await other.post("/api/v1/models/tiny_rsi/predict", json=body)).status_code == 404
    assert (await other.post("/api/v1/models/tiny_rsi/v1/predict", json=body)).status_code == 404
    r = await other.put("/api/v1/models/tiny_rsi/aliases/champion", json={"version": "v1"})
    assert r.status_code == 404
    # The owner still sees it; an admin sees it with its tenant named.
    admin = await api.client_as("admin", tenant="ops")
    (item,) = (await admin.get("/api/v1/models")).json()["items"]
    assert item["tenant"] == "default"
    assert item["links"]["download"].endswith("?tenant=default")
    assert (await admin.get(item["links"]["download"])).status_code == 200


async def test_admins_delete_a_version(api: Api, trained_models: Path) -> None:
    await add_model(api, trained_models)
    second = await add_model(api, trained_models)
    assert second.model.artifact is not None
    store = api.app.state.components.artifacts
    assert store.stat(second.model.artifact.key) is not None
    user_delete = await api.client.delete("/api/v1/models/tiny_rsi/1h_v2")
    assert user_delete.status_code == 403
    admin = await api.client_as("admin")
    assert (await admin.delete("/api/v1/models/tiny_rsi/latest")).status_code == 422
    r = await admin.delete("/api/v1/models/tiny_rsi/1h_v2?reason=toy%20run")
    assert r.status_code == 204, r.text
    names = [i["name"] for i in (await api.client.get("/api/v1/models")).json()["items"]]
    assert names == ["1h_v1"]
    assert store.stat(second.model.artifact.key) is None
    latest = await api.client.get("/api/v1/models/tiny_rsi/latest")
    assert latest.json()["version"] == "1h_v1"
    assert (await api.client.get("/api/v1/models/tiny_rsi/1h_v2")).status_code == 404
    log = await admin.get(f"/api/v1/trainings/{second.training_id}/events")
    deleted = log.json()["events"][-1]
    assert deleted["type"] == "ModelDeleted" and deleted["reason"] == "toy run"


async def test_models_trained_outside_the_service_are_listed_to_admins_and_read_with_local(
    api: Api, trained_models: Path
) -> None:
    """`ktrdr train` into the service's models folder: `{strategy}/...`, no tenant."""
    shutil.copytree(trained_models, api.settings.models_dir, symlinks=True)
    admin = await api.client_as("admin")
    (item,) = (await admin.get("/api/v1/models")).json()["items"]
    assert (item["tenant"], item["name"]) == (None, "1h_v1")
    assert item["links"]["self"] == "/api/v1/models/tiny_rsi/1h_v1?local=true"
    body = (await admin.get(item["links"]["self"])).json()
    assert (body["tenant"], body["version"]) == (None, "1h_v1")
    predicted = await admin.post(item["links"]["predict"], json={"symbol": "EURUSD", "bars": 2})
    assert predicted.status_code == 200, predicted.text
    # Not in the admin's tenant, and local and a tenant together are refused.
    assert (await admin.get("/api/v1/models/tiny_rsi/latest")).status_code == 404
    both = await admin.get("/api/v1/models/tiny_rsi/latest?local=true&tenant=default")
    assert both.status_code == 422
    # Other roles never see them: unlisted, and `local=true` reads like a missing model.
    user = await api.client_as("trainer-user")
    assert (await user.get("/api/v1/models")).json()["items"] == []
    answer = await user.get("/api/v1/models/tiny_rsi/latest?local=true")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "model tiny_rsi/latest not found"


async def test_predict_latest_bars(api: Api, with_model: ev.Completed) -> None:
    r = await api.client.post(
        "/api/v1/models/tiny_rsi/latest/predict", json={"symbol": "EURUSD", "bars": 5}
    )
    assert r.status_code == 200, r.text
    assert r.json()["resolved"]["via"] == "latest"
    rows = r.json()["predictions"]
    assert len(rows) == 5
    stamps = [row["timestamp"] for row in rows]
    assert stamps == sorted(stamps) and stamps[-1].startswith("2017-12-29T21:00")
    for row in rows:
        probabilities = row["probabilities"]
        assert set(probabilities) == {"BUY", "HOLD", "SELL"}
        assert abs(sum(probabilities.values()) - 1) < 1e-5
        assert row["signal"] == max(probabilities, key=probabilities.get)


async def test_model_errors_are_named(api: Api, with_model: ev.Completed) -> None:
    r = await api.client.get("/api/v1/models/tiny_rsi/1h_v9")
    assert r.status_code == 404 and r.json()["detail"] == "model tiny_rsi/1h_v9 not found"
    r = await api.client.get("/api/v1/models/nope/latest")
    assert r.status_code == 404
    r = await api.client.get("/api/v1/models/tiny_rsi/..%2F..%2Fetc")
    assert r.status_code in (404, 422)
    r = await api.client.post(
        "/api/v1/models/tiny_rsi/latest/predict", json={"symbol": "NOPE", "bars": 5}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "symbol"
    r = await api.client.post(
        "/api/v1/models/tiny_rsi/latest/predict", json={"symbol": "EURUSD", "bars": 10**6}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "bars"
    both = {"symbol": "EURUSD", "version": "v1", "alias": "champion"}
    r = await api.client.post("/api/v1/models/tiny_rsi/predict", json=both)
    assert r.status_code == 422


async def test_a_missing_artifact_is_a_clear_503(api: Api, with_model: ev.Completed) -> None:
    assert with_model.model.artifact is not None
    api.app.state.components.artifacts.delete(with_model.model.artifact.key)
    r = await api.client.get("/api/v1/models/tiny_rsi/latest/download")
    assert r.status_code == 503 and r.json()["type"].endswith("artifact-unavailable")
