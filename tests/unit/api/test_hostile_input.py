"""Inputs that used to answer 500 (or be accepted as absurd work) now get a clear 4xx or 503
problem: each case found by fuzzing or fault injection has its test here."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import exc as sa_exc

from tests.unit.api.conftest import FIXTURES, Api

PROBLEM = "application/problem+json"
TINY = (FIXTURES / "tiny_rsi.yaml").read_text()


def problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    return r.json()


def fields(body: dict) -> list[str]:
    return [e["field"] for e in body["errors"]]


async def test_a_model_version_of_5000_digits_is_a_422(api: Api) -> None:
    for version in ("9" * 5000, "1h_v" + "9" * 5000):
        body = problem(await api.client.get(f"/api/v1/models/tiny_rsi/{version}"), 422)
        assert fields(body) == ["version"]


async def test_strategy_yaml_nested_20000_deep_is_a_422(api: Api) -> None:
    block = "\n".join(" " * i + "k:" for i in range(40))  # mappings 40 deep, block style
    for deep in ("[" * 20_000 + "]" * 20_000, block):
        r = await api.client.post("/api/v1/trainings", json={"strategy_yaml": deep})
        body = problem(r, 422)
        assert fields(body) == ["strategy_yaml"] and "nested deeper" in body["detail"]


@pytest.mark.parametrize(
    ("where", "text"),
    [("a NUL", 'description: "a\\0b"'), ("a lone surrogate", 'description: "a\\ud800b"')],
)
async def test_unstorable_characters_in_strategy_text_are_a_422_naming_the_field(
    api: Api, where: str, text: str
) -> None:
    yaml_text = "\n".join(
        text if line.startswith("description:") else line for line in TINY.splitlines()
    )
    assert text in yaml_text, where
    r = await api.client.post("/api/v1/trainings", json={"strategy_yaml": yaml_text})
    assert fields(problem(r, 422)) == ["strategy_yaml.description"]


async def test_unstorable_characters_in_json_fields_are_a_422_naming_the_field(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/trainings", json={"strategy": "tiny_rsi", "overrides": {"epochs\x00": 1}}
    )
    assert fields(problem(r, 422)) == ["overrides"]
    training = (await api.client.get("/api/v1/trainings")).json()
    assert training["items"] == []  # nothing was appended
    r = await api.client.post(
        "/api/v1/trainings/00000000-0000-0000-0000-000000000000/cancel",
        content=b'{"reason": "bye\\u0000"}',
        headers={"content-type": "application/json"},
    )
    assert fields(problem(r, 422)) == ["reason"]


async def test_nul_in_a_path_or_query_never_reaches_the_store(api: Api) -> None:
    problem(await api.client.get("/api/v1/trainings/a%00b"), 404)
    problem(await api.client.post("/api/v1/keys/a%00b/revoke"), 404)
    body = problem(await api.client.get("/api/v1/trainings", params={"cursor": "a\x00"}), 422)
    assert fields(body) == ["cursor"]


async def test_an_unknown_strategy_is_a_404_naming_the_field(api: Api) -> None:
    body = problem(await api.client.post("/api/v1/trainings", json={"strategy": "nope"}), 404)
    assert fields(body) == ["strategy"] and "tiny_rsi" in body["detail"]
    problem(await api.client.get("/api/v1/strategies/nope"), 404)


async def test_error_messages_show_no_server_paths(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/trainings", json={"strategy": "tiny_rsi", "symbols": ["ZZZ"]}
    )
    body = problem(r, 422)
    assert "ZZZ_1h.csv" in body["detail"]
    assert (
        str(api.settings.data_dir) not in r.text
        and str(api.settings.data_dir.resolve()) not in r.text
    )


async def test_a_too_large_body_is_a_413_problem_stating_the_limit(api: Api) -> None:
    limit = api.settings.max_body_bytes
    big = b'{"strategy_yaml": "' + b"x" * (limit + 1) + b'"}'
    for headers in ({"content-type": "application/json"},):
        r = await api.client.post("/api/v1/trainings", content=big, headers=headers)
        assert str(limit) in problem(r, 413)["detail"]

    async def streamed():  # no Content-Length: counted as it arrives
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    r = await api.client.post(
        "/api/v1/trainings", content=streamed(), headers={"content-type": "application/json"}
    )
    assert str(limit) in problem(r, 413)["detail"]


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"hidden_layers": [1_000_000, 1_000_000]}, "overrides.hidden_layers[0]", "limit of 4096"),
        ({"hidden_layers": [8] * 17}, "overrides.hidden_layers", "limit of 16"),
        ({"batch_size": 10**9}, "overrides.batch_size", "limit of 65536"),
        ({"epochs": 10**12}, "overrides.epochs", "limit of 10000"),
        ({"epochs": 10**400}, "overrides.epochs", "limit of 10000"),
        ({"epochs": "10"}, "overrides.epochs", "must be an integer, got str"),
        ({"epochs": True}, "overrides.epochs", "must be an integer, got bool"),
        ({"model.training.epochs": True}, "overrides.model.training.epochs", "got bool"),
        ({"learning_rate": "0.1"}, "overrides.learning_rate", "must be a number"),
        ({"hidden_layers": [8, "8"]}, "overrides.hidden_layers", "a list of integers"),
    ],
)
async def test_absurd_or_loosely_typed_hyper_parameters_are_a_422(
    api: Api, overrides: dict, field: str, says: str
) -> None:
    r = await api.client.post(
        "/api/v1/trainings", json={"strategy": "tiny_rsi", "overrides": overrides}
    )
    body = problem(r, 422)
    assert field in fields(body) and says in body["detail"], body


async def test_the_limits_are_settings_an_admin_can_raise(api: Api) -> None:
    api.settings.max_epochs = 20
    r = await api.client.post(
        "/api/v1/trainings", json={"strategy": "tiny_rsi", "overrides": {"epochs": 21}}
    )
    assert "limit of 20" in problem(r, 422)["detail"]
    r = await api.client.post(
        "/api/v1/trainings", json={"strategy": "tiny_rsi", "overrides": {"epochs": 20}}
    )
    assert r.status_code == 202, r.text


async def test_validate_applies_the_limits_too(api: Api) -> None:
    yaml_text = TINY.replace("epochs: 2", "epochs: 99999999", 1)
    assert yaml_text != TINY
    r = await api.client.post("/api/v1/strategies/validate", json={"strategy_yaml": yaml_text})
    assert fields(problem(r, 422)) == ["strategy_yaml.model.training.epochs"]


async def test_a_database_outage_is_a_503_with_retry_after_not_a_500(api: Api) -> None:
    real = api.store

    class Down:  # keys still check out; the read the route makes finds the database gone
        def __getattr__(self, name):
            if "api_key" in name:
                return getattr(real, name)
            raise sa_exc.OperationalError("SELECT", {}, ConnectionRefusedError("refused"))

    api.app.state.components.store = Down()
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=True)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers=dict(api.client.headers)
    ) as client:  # raise_app_exceptions: nothing escapes the app (uvicorn would drop the link)
        r = await client.get("/api/v1/trainings")
    body = problem(r, 503)
    assert r.headers["retry-after"] == "5" and "database" in body["detail"]


async def test_integers_beyond_the_log_positions_are_a_422(api: Api) -> None:
    from tests.unit.api.conftest import requested

    tid = await requested(api.store)
    huge = str(2**64)
    body = problem(await api.client.get(f"/api/v1/trainings/{tid}/events?after={huge}"), 422)
    assert fields(body) == ["after"]
    body = problem(await api.client.get(f"/api/v1/trainings/{tid}?as_of={huge}"), 422)
    assert fields(body) == ["as_of"]
    r = await api.client.get("/api/v1/trainings", params={"cursor": huge})
    assert fields(problem(r, 422)) == ["cursor"]
    r = await api.client.get(
        f"/api/v1/trainings/{tid}/events",
        headers={"Accept": "text/event-stream", "Last-Event-ID": "99999999999999999999"},
    )
    assert r.status_code in (400, 422) and r.headers["content-type"].startswith(PROBLEM)
