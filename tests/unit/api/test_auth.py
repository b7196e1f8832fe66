"""Access control: API keys (401s, roles, revocation, expiry, rate limiting), the keys routes,
every route closed by default, and tenancy (another tenant's trainings and models are 404)."""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from services.api.apikeys import generate_key, new_record
from services.api.auth import (
    DOCS_ASSETS_PREFIX,
    FailureLimiter,
    is_open,
    open_paths,
    source_of,
)
from tests.support.events import TrainingScript
from tests.unit.api.conftest import FIXTURES, Api, bearer, requested, tiny_run

TRAININGS = "/api/v1/trainings"
SUBMIT = {"strategy": "tiny_rsi", "overrides": {"epochs": 1}}


def anonymous(api: Api, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://api", headers=headers
    )


def assert_challenge(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_no_key_is_401_with_a_bearer_challenge_and_probes_stay_open(api: Api) -> None:
    async with anonymous(api) as client:
        assert_challenge(await client.get(TRAININGS))
        assert_challenge(await client.post(TRAININGS, content=b"{not json"))  # nothing parsed
        assert_challenge(await client.get("/api/v1/nowhere"))  # unknown paths leak nothing
        for probe in ("/healthz", "/api/v1/healthz"):
            assert (await client.get(probe)).status_code == 200
        assert (await client.get("/readyz")).status_code in (200, 503)
        assert (await client.get("/openapi.json")).status_code == 200  # public_docs default


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer ktrdr_0123456789abcdef_" + "x" * 43,  # well formed, unknown id
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
async def test_a_wrong_key_is_401(api: Api, authorization: str) -> None:
    async with anonymous(api, Authorization=authorization) as client:
        assert_challenge(await client.get(TRAININGS))


async def test_a_known_key_id_with_a_wrong_secret_is_401_and_the_secret_is_not_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    good = await api.key()
    key_id = good.split("_")[1]
    forged = f"ktrdr_{key_id}_{'A' * 43}"
    with caplog.at_level(logging.INFO, logger="ktrdr.api.auth"):
        async with anonymous(api, **bearer(forged)) as client:
            assert_challenge(await client.get(TRAININGS))
    logged = caplog.text
    assert "authentication failed" in logged and key_id in logged
    assert "A" * 43 not in logged and good.split("_", 2)[2] not in logged


async def test_failed_authentications_are_rate_limited_per_address(api: Api) -> None:
    burst = api.settings.auth_failure_burst
    async with anonymous(api, Authorization="Bearer wrong") as client:
        answers = [(await client.get(TRAININGS)).status_code for _ in range(burst)]
        assert answers == [401] * burst
        limited = await client.get(TRAININGS)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # Another address is not affected, and a request without a key guesses nothing.
    other = httpx.ASGITransport(app=api.app, client=("10.0.0.2", 1234))
    async with httpx.AsyncClient(transport=other, base_url="http://api") as client:
        assert (await client.get(TRAININGS, headers=bearer(await api.key()))).status_code == 200


async def test_a_valid_key_is_not_locked_out_by_failures_from_its_address(api: Api) -> None:
    """Behind NAT or a proxy many callers share one address: once a key has worked, other
    callers' failures from that address do not throttle it; unknown keys still get 429."""
    key = await api.key()
    async with anonymous(api) as client:
        assert (await client.get(TRAININGS, headers=bearer(key))).status_code == 200
        for _ in range(api.settings.auth_failure_burst):
            assert (await client.get(TRAININGS, headers=bearer("wrong"))).status_code == 401
        assert (await client.get(TRAININGS, headers=bearer("wrong"))).status_code == 429
        assert (await client.get(TRAININGS, headers=bearer(key))).status_code == 200


def test_failure_buckets_count_ipv6_per_64_and_the_table_is_bounded() -> None:
    limiter = FailureLimiter(burst=2, per_minute=1, clock=lambda: 0.0, max_addresses=3)
    for host in ("2001:db8::1", "2001:db8::2"):  # one /64: one bucket
        limiter.spend(host)
    assert limiter.retry_after("2001:db8::ffff") is not None
    assert limiter.retry_after("2001:db8:0:1::1") is None  # the next /64
    assert source_of("::ffff:10.0.0.7") == "10.0.0.7" == source_of("10.0.0.7")
    for n in range(10):
        limiter.spend(f"10.0.0.{n}")
    assert limiter.tracked == 3  # the most recent failures only
    assert limiter.retry_after("2001:db8::1") is None  # evicted: forgotten


def test_forwarded_headers_count_only_from_named_proxies(api: Api) -> None:
    assert api.settings.proxy_options() == {"proxy_headers": False}
    behind = api.settings.model_copy(update={"forwarded_allow_ips": "10.0.0.5"})
    assert behind.proxy_options() == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5"}


def test_open_paths_follow_the_docs_setting(api: Api) -> None:
    closed = open_paths(api.settings.model_copy(update={"public_docs": False}))
    assert "/openapi.json" not in closed and "/healthz" in closed
    assert "/openapi.json" in open_paths(api.settings)


def _example_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "0123456789abcdef", path)


async def test_every_route_but_the_probes_and_docs_requires_a_key(api: Api) -> None:
    """Enumerates the app's routes (those of included routers too): a route added without
    thinking about auth is closed."""
    open_ = open_paths(api.settings)
    checked = []
    async with anonymous(api) as client:
        for context in iter_route_contexts(api.app.routes):
            if is_open(context.path, open_):  # the probes, the docs, the dashboard's files
                continue
            if isinstance(context.original_route, Mount):  # the one mount: the docs' own files
                assert context.original_route.path == DOCS_ASSETS_PREFIX
                continue
            for accept in ("application/json", "text/event-stream"):  # both /events variants
                for method in sorted(context.original_route.methods):
                    r = await client.request(
                        method, _example_path(context.path), headers={"accept": accept}
                    )
                    assert_challenge(r)
                    checked.append((method, context.path))
    assert len(checked) >= 12  # trainings, events (JSON + SSE), strategies, models, keys
    assert ("POST", "/api/v1/keys") in checked and ("POST", "/api/v1/trainings") in checked


async def test_a_reader_cannot_submit_or_cancel(api: Api) -> None:
    tid = await requested(api.store)
    reader = await api.client_as("reader")
    r = await reader.post(TRAININGS, json=SUBMIT)
    assert r.status_code == 403 and "trainer-user" in r.json()["detail"]
    assert (await reader.post(f"{TRAININGS}/{tid}/cancel")).status_code == 403
    assert (await reader.get(f"{TRAININGS}/{tid}")).status_code == 200  # reading is fine
    assert (await api.client.post(f"{TRAININGS}/{tid}/cancel")).status_code == 202


async def test_a_tenant_sees_streams_audits_and_cancels_only_its_own_trainings(api: Api) -> None:
    mine = await requested(api.store, tenant="default")
    theirs = await requested(api.store, tenant="acme")
    await api.store.append(tiny_run(theirs, epochs=1, batches=1)[:2])
    position = (await api.store.read_stream(theirs))[-1].position
    for path in (
        f"{TRAININGS}/{theirs}",
        f"{TRAININGS}/{theirs}?as_of={position}",
        f"{TRAININGS}/{theirs}/events",
    ):
        r = await api.client.get(path)
        assert r.status_code == 404 and theirs in r.json()["detail"], path
    sse = await api.client.get(
        f"{TRAININGS}/{theirs}/events", headers={"accept": "text/event-stream"}
    )
    assert sse.status_code == 404
    assert (await api.client.post(f"{TRAININGS}/{theirs}/cancel")).status_code == 404
    listed = (await api.client.get(TRAININGS)).json()["items"]
    assert [i["training_id"] for i in listed] == [mine]
    # acme sees its own, and an admin sees both.
    acme = await api.client_as("trainer-user", "acme")
    assert (await acme.get(f"{TRAININGS}/{theirs}/events")).status_code == 200
    assert (await acme.get(f"{TRAININGS}/{mine}")).status_code == 404
    admin = await api.client_as("admin")
    every = {i["training_id"] for i in (await admin.get(TRAININGS)).json()["items"]}
    assert every == {mine, theirs}


async def test_idempotency_keys_are_per_tenant(api: Api) -> None:
    acme = await api.client_as("trainer-user", "acme")
    headers = {"Idempotency-Key": "same-key"}
    first = await api.client.post(TRAININGS, json=SUBMIT, headers=headers)
    second = await acme.post(TRAININGS, json=SUBMIT, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["training_id"] != second.json()["training_id"]
    state = await api.store.get_training(second.json()["training_id"])
    assert state.tenant == "acme"


@pytest.fixture(scope="module")
def one_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder as the trainer saves it (tiny_rsi/1h_v1), trained once per module."""
    import yaml

    from libs.pipeline.pipeline import train_strategy
    from libs.pipeline.request import TrainingRequest
    from tests.unit.api.conftest import REPO

    models = tmp_path_factory.mktemp("models")
    train_strategy(
        TrainingRequest(
            strategy=yaml.safe_load((FIXTURES / "tiny_rsi.yaml").read_text()),
            data_dir=REPO / "data",
            models_dir=models,
            start_date="2017-09-01",
            overrides={"epochs": 1},
            seed=3,
            device="cpu",
        )
    )
    return models


def place(api: Api, one_model: Path, tenant: str, *folders: str) -> Path:
    """Copies of the trained model as `tenants/{tenant}/tiny_rsi/{folder}`, latest pointers
    moved as a saver moves them; the tenant's strategy folder."""
    from libs.pipeline.storage.layout import update_latest_pointer

    strategy_dir = api.settings.models_dir / "tenants" / tenant / "tiny_rsi"
    for folder in folders:
        shutil.copytree(one_model / "tiny_rsi" / "1h_v1", strategy_dir / folder)
    for timeframe in {folder.rsplit("_v", 1)[0] for folder in folders}:
        update_latest_pointer(strategy_dir, timeframe)
    return strategy_dir


async def completed(api: Api, tenant: str, version: int, timeframe: str = "1h") -> None:
    """The read model's row: `tenant` trained tiny_rsi `{timeframe}_v{version}`."""
    script = TrainingScript(
        str(uuid.uuid4()), tenant=tenant, strategy="tiny_rsi", timeframe=timeframe
    )
    await api.store.append([script.requested(), script.started(), script.completed(version)])


async def test_a_tenant_lists_reads_and_predicts_only_with_its_own_models(
    api: Api, one_model: Path
) -> None:
    place(api, one_model, "acme", "1h_v1")
    await completed(api, "acme", 1)
    acme = await api.client_as("trainer-user", "acme")
    model = "/api/v1/models/tiny_rsi/1h_v1"
    body = {"symbol": "EURUSD", "bars": 3}
    listed = (await acme.get("/api/v1/models")).json()["items"]
    assert [(m["tenant"], m["name"]) for m in listed] == [("acme", "1h_v1")]
    assert listed[0]["links"]["self"] == model  # its own: no tenant to name
    assert (await acme.get(model)).status_code == 200
    assert (await acme.get(f"{model}?tenant=acme")).status_code == 200
    assert (await acme.post(f"{model}/predict", json=body)).status_code == 200
    # The default tenant's trainer-user: not its model, even naming acme's tenant.
    assert (await api.client.get("/api/v1/models")).json()["items"] == []
    assert (await api.client.get(model)).status_code == 404
    assert (await api.client.get(f"{model}?tenant=acme")).status_code == 404
    assert (await api.client.post(f"{model}/predict", json=body)).status_code == 404
    assert (await api.client.post(f"{model}/predict?tenant=acme", json=body)).status_code == 404


async def test_two_tenants_each_get_v1_and_admins_see_both_with_their_tenants(
    api: Api, one_model: Path
) -> None:
    from libs.pipeline.storage.layout import rename_into_next_version, tenant_models_dir

    for tenant in ("acme", "globex"):  # each saver allocates in its own tenant's tree
        strategy_dir = tenant_models_dir(api.settings.models_dir, tenant) / "tiny_rsi"
        strategy_dir.mkdir(parents=True)
        tmp = strategy_dir / ".tmp-1h"
        shutil.copytree(one_model / "tiny_rsi" / "1h_v1", tmp)
        _, version = rename_into_next_version(tmp, strategy_dir, "1h")
        assert version == 1
        await completed(api, tenant, version)
    rows = await api.store.list_models(strategy="tiny_rsi")
    assert sorted((m.tenant, m.version) for m in rows) == [("acme", 1), ("globex", 1)]

    admin = await api.client_as("admin")
    listed = (await admin.get("/api/v1/models")).json()["items"]
    assert [(m["tenant"], m["name"], m["links"]["self"]) for m in listed] == [
        ("acme", "1h_v1", "/api/v1/models/tiny_rsi/1h_v1?tenant=acme"),
        ("globex", "1h_v1", "/api/v1/models/tiny_rsi/1h_v1?tenant=globex"),
    ]
    for tenant in ("acme", "globex"):
        client = await api.client_as("reader", tenant)
        mine = (await client.get("/api/v1/models")).json()["items"]
        assert [(m["tenant"], m["name"]) for m in mine] == [(tenant, "1h_v1")]
        got = (await client.get("/api/v1/models/tiny_rsi/latest")).json()
        assert got["path"] == f"tenants/{tenant}/tiny_rsi/1h_v1"
        got = (await admin.get(f"/api/v1/models/tiny_rsi/v1?tenant={tenant}")).json()
        assert (got["tenant"], got["path"]) == (tenant, f"tenants/{tenant}/tiny_rsi/1h_v1")
        predicted = await admin.post(
            f"/api/v1/models/tiny_rsi/v1/predict?tenant={tenant}",
            json={"symbol": "EURUSD", "bars": 2},
        )
        assert predicted.status_code == 200, predicted.text
    # Without ?tenant= an admin reads its own tenant's ("default": none here).
    assert (await admin.get("/api/v1/models/tiny_rsi/v1")).status_code == 404
    assert (await admin.get("/api/v1/models/tiny_rsi/v1?tenant=Not..A/tenant")).status_code in (
        404,
        422,
    )
    assert (await admin.get("/api/v1/models/tiny_rsi/v1?tenant=Acme")).status_code == 422


async def test_latest_is_the_callers_newest_model_even_when_its_folder_holds_a_newer_one(
    api: Api, one_model: Path
) -> None:
    # On disk acme's latest is v2, a folder no Completed of acme's recorded: never shown.
    place(api, one_model, "acme", "1h_v1", "1h_v2")
    place(api, one_model, "globex", "1h_v1", "1h_v2")
    await completed(api, "acme", 1)
    await completed(api, "globex", 2)
    acme = await api.client_as("trainer-user", "acme")
    body = {"symbol": "EURUSD", "bars": 3}
    for latest in ("latest", "1h_latest", "v1"):
        answer = await acme.get(f"/api/v1/models/tiny_rsi/{latest}")
        assert answer.status_code == 200 and answer.json()["version"] == "1h_v1", latest
    predicted = await acme.post("/api/v1/models/tiny_rsi/latest/predict", json=body)
    assert predicted.status_code == 200 and predicted.json()["version"] == "1h_v1"
    assert (await acme.get("/api/v1/models/tiny_rsi/v2")).status_code == 404
    globex = await api.client_as("trainer-user", "globex")
    assert (await globex.get("/api/v1/models/tiny_rsi/latest")).json()["version"] == "1h_v2"
    admin = await api.client_as("admin")
    for tenant, newest in (("acme", "1h_v1"), ("globex", "1h_v2")):  # admins too: the registry
        latest = await admin.get(f"/api/v1/models/tiny_rsi/latest?tenant={tenant}")
        assert latest.json()["version"] == newest


async def test_another_tenants_model_reads_exactly_like_a_missing_one(
    api: Api, one_model: Path
) -> None:
    """Ownership is settled from the read model before the disk is read: no miss reveals what
    other tenants have (their versions, timeframes) or where the server keeps models."""
    # acme's folder also holds folders acme never trained (as a restore or a copy may leave).
    place(api, one_model, "acme", "1h_v1", "1h_v2", "4h_v1")
    place(api, one_model, "globex", "1h_v2", "4h_v1")
    owners = (("acme", "1h", 1), ("globex", "1h", 2), ("globex", "4h", 1), ("acme", "1h", 3))
    for tenant, timeframe, version in owners:  # acme's v3 is gone from disk
        await completed(api, tenant, version, timeframe)
    acme = await api.client_as("trainer-user", "acme")
    body = {"symbol": "EURUSD", "bars": 3}
    misses = [
        ("tiny_rsi", version)
        for version in ("1h_v9", "1h_v2", "4h_v1", "4h_latest", "v2", "1h_v3", "2" * 30)
    ] + [("nope", "latest"), ("nope", "1h_v1")]
    for strategy, version in misses:
        for query in ("", "?tenant=globex", "?local=true"):
            for answer in (
                await acme.get(f"/api/v1/models/{strategy}/{version}{query}"),
                await acme.post(f"/api/v1/models/{strategy}/{version}/predict{query}", json=body),
            ):
                assert answer.status_code == 404, (version, query, answer.text)
                assert answer.json()["detail"] == f"model {strategy}/{version} not found"
    assert (await acme.get("/api/v1/models/tiny_rsi/v1")).json()["version"] == "1h_v1"
    # Admins are told which versions the registry holds, never the server's folder.
    admin = await api.client_as("admin")
    for strategy, version in (("tiny_rsi", "1h_v9"), ("nope", "latest")):
        detail = (await admin.get(f"/api/v1/models/{strategy}/{version}")).json()["detail"]
        assert "not found" in detail or "no saved models" in detail, detail
        assert api.settings.models_dir.parent.name not in detail, detail
    missing = await admin.get("/api/v1/models/tiny_rsi/1h_v9?tenant=acme")
    assert "available: 1, 3" in missing.json()["detail"]  # the registry's, not the folder's


async def test_admins_create_list_and_revoke_keys_and_a_revoked_key_fails_at_once(
    api: Api,
) -> None:
    admin = await api.client_as("admin")
    r = await admin.post("/api/v1/keys", json={"name": "ci", "role": "reader", "tenant": "acme"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["key"].startswith(f"ktrdr_{made['key_id']}_")
    assert (made["tenant"], made["role"], made["active"]) == ("acme", "reader", True)
    record = await api.store.api_key(made["key_id"])
    assert made["key"].split("_", 2)[2] not in record.secret_hash  # only the hash is stored
    async with anonymous(api, **bearer(made["key"])) as client:
        assert (await client.get(TRAININGS)).status_code == 200
        assert (await api.store.api_key(made["key_id"])).last_used_at is not None
        listed = (await admin.get("/api/v1/keys", params={"tenant": "acme"})).json()["items"]
        assert [k["key_id"] for k in listed] == [made["key_id"]]
        assert all("key" not in k and "secret_hash" not in k for k in listed)
        revoked = await admin.post(f"/api/v1/keys/{made['key_id']}/revoke")
        assert revoked.status_code == 200 and revoked.json()["active"] is False
        assert_challenge(await client.get(TRAININGS))
    assert (await admin.post("/api/v1/keys/ffffffffffffffff/revoke")).status_code == 404
    # Only admins manage keys.
    assert (await api.client.get("/api/v1/keys")).status_code == 403
    assert (await api.client.post("/api/v1/keys", json={"name": "x"})).status_code == 403


async def test_an_expired_key_fails(api: Api) -> None:
    key = generate_key()
    past = datetime.now(UTC) - timedelta(seconds=1)
    await api.store.add_api_key(
        new_record(key, tenant="default", role="admin", name="old", expires_at=past)
    )
    async with anonymous(api, **bearer(key)) as client:
        assert_challenge(await client.get(TRAININGS))
