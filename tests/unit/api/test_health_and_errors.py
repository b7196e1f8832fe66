"""Probes, and the error contract: problem+json for every error, never a 500 for bad input,
a bare problem 500 (no internals) for a real bug."""

from __future__ import annotations

import random
import string

import httpx

from tests.unit.api.conftest import Api

PROBLEM = "application/problem+json"


async def test_healthz(api: Api) -> None:
    for url in ("/healthz", "/api/v1/healthz"):
        r = await api.client.get(url)
        assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_readyz_ready_when_migrated_and_bus_started(api: Api) -> None:
    r = await api.client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["failed"] == []
    assert {"database", "migrations", "broker"} <= set(r.json()["checks"])


async def test_readyz_names_the_failing_checks(api: Api) -> None:
    await api.bus.close()
    r = await api.client.get("/readyz")
    assert r.status_code == 503 and r.json()["failed"] == ["broker"]


async def test_unknown_route_and_wrong_method_are_problems(api: Api) -> None:
    r = await api.client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)
    r = await api.client.delete("/api/v1/trainings")
    assert r.status_code == 405 and r.headers["content-type"].startswith(PROBLEM)


async def test_malformed_json_is_a_422_problem(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/trainings", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert "JSON" in r.json()["errors"][0]["reason"]


async def test_oversized_body_is_refused(api: Api) -> None:
    big = b'{"strategy_yaml": "' + b"x" * (api.settings.max_body_bytes + 1) + b'"}'
    r = await api.client.post(
        "/api/v1/trainings", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


async def test_unexpected_error_is_a_bare_500_problem(api: Api) -> None:
    real = api.store

    class Broken:  # keys still check out; everything else blows up
        def __getattr__(self, name):
            if "api_key" in name:
                return getattr(real, name)
            raise RuntimeError("secret internals: password=hunter2")

    api.app.state.components.store = Broken()
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    headers = dict(api.client.headers)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers=headers
    ) as client:
        r = await client.get("/api/v1/trainings")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "hunter2" not in r.text and "RuntimeError" not in r.text


def _junk(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 2 else 5)
    if kind == 0:
        return rng.randint(-(2**70), 2**70)
    if kind == 1:
        return rng.random() * 10 ** rng.randint(-5, 30)
    if kind == 2:
        alphabet = string.printable + "éü../\\\x00"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
    if kind == 3:
        return None
    if kind == 4:
        return rng.choice([True, False])
    if kind in (5, 6):
        return [_junk(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): _junk(rng, depth + 1) for _ in range(rng.randint(0, 5))}


KEYS = [
    "strategy",
    "strategy_yaml",
    "symbols",
    "timeframes",
    "start_date",
    "end_date",
    "overrides",
    "seed",
    "device",
    "epochs",
    "reason",
    "symbol",
    "bars",
    "x",
]


async def test_random_bodies_never_give_a_server_error(api: Api) -> None:
    """A seeded fuzz of every write route: any status but 5xx, always a problem document."""
    rng = random.Random(1234)
    routes = [
        "/api/v1/trainings",
        "/api/v1/strategies/validate",
        "/api/v1/trainings/x/cancel",
        "/api/v1/models/tiny_rsi/latest/predict",
    ]
    for _ in range(150):
        body = _junk(rng)
        if rng.random() < 0.5:
            body = {k: _junk(rng, 1) for k in rng.sample(KEYS, rng.randint(1, 4))}
            if rng.random() < 0.5:
                body["strategy"] = rng.choice(["tiny_rsi", "../x", "", "a" * 200])
        for route in routes:
            r = await api.client.post(route, json=body)
            assert r.status_code < 500, (route, body, r.text)
            if r.status_code >= 400:
                assert r.headers["content-type"].startswith(PROBLEM), (route, r.text)
