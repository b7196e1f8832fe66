"""GET /models, GET /models/{strategy}/{version}, POST .../predict on a model trained by a tiny
train_strategy run (one epoch of a one-indicator strategy on four months of data)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from libs.pipeline.pipeline import train_strategy
from libs.pipeline.request import TrainingRequest
from tests.unit.api.conftest import FIXTURES, REPO, Api, bearer


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


@pytest.fixture
async def with_models(api: Api, trained_models: Path) -> Api:
    """Models in the admin's own tenant folder (`tenants/default`) with no read-model row:
    admins read any folder, their own tenant's by default."""
    shutil.copytree(trained_models, api.settings.models_dir / "tenants" / "default", symlinks=True)
    api.client.headers.update(bearer(await api.key("admin")))
    return api


async def test_list_and_get_model(with_models: Api) -> None:
    api = with_models
    items = (await api.client.get("/api/v1/models")).json()["items"]
    found = [(i["tenant"], i["strategy"], i["timeframe"], i["version"]) for i in items]
    assert found == [("default", "tiny_rsi", "1h", 1)]
    assert items[0]["latest"] is True
    assert items[0]["links"]["self"] == "/api/v1/models/tiny_rsi/1h_v1?tenant=default"
    for version in ("1h_v1", "latest", "1h_latest", "v1", "1"):
        r = await api.client.get(f"/api/v1/models/tiny_rsi/{version}")
        assert r.status_code == 200, (version, r.text)
        body = r.json()
        assert body["version"] == "1h_v1" and body["features"]["count"] > 0
        assert body["config"]["name"] == "tiny_rsi"
        assert body["tenant"] == "default" and body["path"] == "tenants/default/tiny_rsi/1h_v1"


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
    assert (body["tenant"], body["path"]) == (None, "tiny_rsi/1h_v1")
    predicted = await admin.post(item["links"]["predict"], json={"symbol": "EURUSD", "bars": 2})
    assert predicted.status_code == 200, predicted.text
    # Not in the admin's tenant folder, and local and a tenant together are refused.
    assert (await admin.get("/api/v1/models/tiny_rsi/latest")).status_code == 404
    both = await admin.get("/api/v1/models/tiny_rsi/latest?local=true&tenant=default")
    assert both.status_code == 422
    # Other roles never see them: unlisted, and `local=true` reads like a missing model.
    user = await api.client_as("trainer-user")
    assert (await user.get("/api/v1/models")).json()["items"] == []
    answer = await user.get("/api/v1/models/tiny_rsi/latest?local=true")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "model tiny_rsi/latest not found"


async def test_predict_latest_bars(with_models: Api) -> None:
    r = await with_models.client.post(
        "/api/v1/models/tiny_rsi/latest/predict", json={"symbol": "EURUSD", "bars": 5}
    )
    assert r.status_code == 200, r.text
    rows = r.json()["predictions"]
    assert len(rows) == 5
    stamps = [row["timestamp"] for row in rows]
    assert stamps == sorted(stamps) and stamps[-1].startswith("2017-12-29T21:00")
    for row in rows:
        probabilities = row["probabilities"]
        assert set(probabilities) == {"BUY", "HOLD", "SELL"}
        assert abs(sum(probabilities.values()) - 1) < 1e-5
        assert row["signal"] == max(probabilities, key=probabilities.get)


async def test_model_errors_are_named(with_models: Api) -> None:
    api = with_models
    r = await api.client.get("/api/v1/models/tiny_rsi/1h_v9")
    assert r.status_code == 404 and "available: 1" in r.json()["detail"]
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
