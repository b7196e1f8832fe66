"""POST /api/v1/trainings: validation errors name the field; a valid request appends one
TrainingRequested folded to `queued`; Idempotency-Key replays or conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.events.catalog import DeviceInfo, TrainerHeartbeat
from tests.unit.api.conftest import FIXTURES, Api

PROBLEM = "application/problem+json"


def fields(response) -> dict[str, str]:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    body = response.json()
    assert {"type", "title", "status", "detail", "errors"} <= set(body)
    assert body["status"] == response.status_code
    return {e["field"]: e["reason"] for e in body["errors"]}


async def submit(api: Api, body: dict, **headers: str):
    return await api.client.post("/api/v1/trainings", json=body, headers=headers)


async def test_valid_submit_appends_request_and_reads_back_queued(api: Api) -> None:
    r = await submit(api, {"strategy": "tiny_rsi", "overrides": {"epochs": 3}, "seed": 7})
    assert r.status_code == 202, r.text
    body = r.json()
    tid = body["training_id"]
    assert body["status"] == "queued"
    assert body["links"] == {
        "self": f"/api/v1/trainings/{tid}",
        "events": f"/api/v1/trainings/{tid}/events",
        "cancel": f"/api/v1/trainings/{tid}/cancel",
    }
    assert r.headers["location"] == body["links"]["self"]
    [stored] = await api.store.read_stream(tid)
    event = stored.event
    assert event.type == "TrainingRequested" and event.source == "api"
    assert (event.strategy_name, event.symbols, event.timeframes) == (
        "tiny_rsi",
        ["EURUSD"],
        ["1h"],
    )
    assert event.overrides == {"epochs": 3} and event.seed == 7
    assert event.strategy["name"] == "tiny_rsi"  # the resolved snapshot travels with it
    view = (await api.client.get(body["links"]["self"])).json()
    assert view["status"] == "queued" and view["position"] == stored.position


async def test_strategy_yaml_is_accepted_and_unknown_field_is_named(api: Api) -> None:
    text = (FIXTURES / "tiny_rsi.yaml").read_text()
    assert (await submit(api, {"strategy_yaml": text})).status_code == 202
    bad = text.replace("optimizer: adam", "optimiser: adam")
    r = await submit(api, {"strategy_yaml": bad})
    assert r.status_code == 422
    errors = fields(r)
    assert "strategy_yaml.model.training.optimiser" in errors
    assert "optimizer" in errors["strategy_yaml.model.training.optimiser"]  # the valid names


@pytest.mark.parametrize("body", [{}, {"strategy": "tiny_rsi", "strategy_yaml": "name: x"}])
async def test_exactly_one_strategy_field(api: Api, body: dict) -> None:
    r = await submit(api, body)
    assert r.status_code == 422
    assert {"strategy", "strategy_yaml"} <= set(fields(r))


@pytest.mark.parametrize("name", ["../tiny_rsi", "..", "a/b", "/etc/passwd", "x\\y"])
async def test_strategy_name_cannot_escape_the_folder(api: Api, name: str) -> None:
    r = await submit(api, {"strategy": name})
    assert r.status_code == 422
    assert "strategy" in fields(r)


async def test_unknown_strategy_lists_the_known_ones(api: Api) -> None:
    r = await submit(api, {"strategy": "nope"})
    assert r.status_code == 404
    assert "tiny_rsi" in fields(r)["strategy"]


async def test_yaml_looking_like_a_path_is_never_read_as_a_file(api: Api, tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text((FIXTURES / "tiny_rsi.yaml").read_text())
    r = await submit(api, {"strategy_yaml": str(secret)})
    assert r.status_code == 422
    assert "strategy_yaml" in fields(r)


async def test_yaml_aliases_and_oversize_are_refused(api: Api) -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    assert "aliases" in fields(await submit(api, {"strategy_yaml": bomb}))["strategy_yaml"]
    huge = "name: x\n" + "#" * (api.settings.max_strategy_yaml_bytes + 10)
    assert "too large" in fields(await submit(api, {"strategy_yaml": huge}))["strategy_yaml"]


async def test_unknown_override_and_bad_override_value(api: Api) -> None:
    r = await submit(api, {"strategy": "tiny_rsi", "overrides": {"epocs": 3}})
    assert r.status_code == 422
    assert "epochs" in fields(r)["overrides.epocs"]  # names the valid keys
    r = await submit(api, {"strategy": "tiny_rsi", "overrides": {"epochs": 0}})
    assert "overrides.epochs" in fields(r)


async def test_missing_data_file_names_the_symbol(api: Api) -> None:
    r = await submit(api, {"strategy": "tiny_rsi", "symbols": ["EURUSD", "NOPE"]})
    assert r.status_code == 422
    errors = fields(r)
    assert "symbols[1]" in errors and "NOPE_1h.csv" in errors["symbols[1]"]


async def test_coarser_timeframe_resampled_from_finer_file_is_accepted(api: Api) -> None:
    r = await submit(api, {"strategy": "tiny_rsi", "timeframes": ["4h"]})
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    "body,field",
    [
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "2017-06-01", "end_date": "2017-05-01"}, "end_date"),
        ({"start_date": "2019-01-01"}, "start_date"),  # after the last bar of the data
        ({"end_date": "2010-01-01"}, "end_date"),  # before the first bar
    ],
)
async def test_bad_dates_are_named(api: Api, body: dict, field: str) -> None:
    r = await submit(api, {"strategy": "tiny_rsi", **body})
    assert r.status_code == 422
    assert field in fields(r)


async def test_request_schema_errors_are_problems_naming_the_field(api: Api) -> None:
    r = await submit(api, {"strategy": "tiny_rsi", "device": "tpu", "colour": "red"})
    assert r.status_code == 422
    errors = fields(r)
    assert "device" in errors and errors["colour"] == "unknown field"
    r = await submit(api, {"strategy": "tiny_rsi", "symbols": ["../etc"]})
    assert "symbols[0]" in fields(r)


async def test_idempotency_key_replays_the_same_training(api: Api) -> None:
    body = {"strategy": "tiny_rsi", "overrides": {"epochs": 2}}
    first = await submit(api, body, **{"Idempotency-Key": "k-1"})
    again = await submit(api, {**body, "seed": 42}, **{"Idempotency-Key": "k-1"})  # same request
    assert first.status_code == again.status_code == 202
    tid = first.json()["training_id"]
    assert again.json()["training_id"] == tid
    assert len(await api.store.read_stream(tid)) == 1
    assert await api.store.max_position() == 1  # no second event anywhere
    other = await submit(api, body, **{"Idempotency-Key": "k-2"})
    assert other.json()["training_id"] != tid


async def test_idempotency_key_with_another_body_conflicts(api: Api) -> None:
    await submit(api, {"strategy": "tiny_rsi"}, **{"Idempotency-Key": "k"})
    r = await submit(api, {"strategy": "tiny_rsi", "seed": 1}, **{"Idempotency-Key": "k"})
    assert r.status_code == 409
    assert r.headers["content-type"].startswith(PROBLEM)
    assert await api.store.max_position() == 1


async def test_bad_idempotency_key_is_named(api: Api) -> None:
    r = await submit(api, {"strategy": "tiny_rsi"}, **{"Idempotency-Key": "x" * 300})
    assert r.status_code == 422
    assert "Idempotency-Key" in fields(r)


async def test_warnings_for_dates_outside_the_data_and_missing_trainers(api: Api) -> None:
    r = await submit(api, {"strategy": "tiny_rsi", "start_date": "2016-06-01"})
    assert r.status_code == 202, r.text
    warnings = r.json()["warnings"]
    assert any("start_date is before the first EURUSD bar" in w for w in warnings)
    assert any("no trainer" in w for w in warnings)
    assert any("decisions" in w for w in warnings)  # a section training does not use
    await api.store.append(
        [
            TrainerHeartbeat(
                source="trainer:t1",
                trainer_id="t1",
                host="h",
                device=DeviceInfo(type="cpu", name="cpu"),
            )
        ]
    )
    cpu = (await submit(api, {"strategy": "tiny_rsi", "device": "cpu"})).json()["warnings"]
    assert not any("trainer" in w for w in cpu)
    cuda = (await submit(api, {"strategy": "tiny_rsi", "device": "cuda"})).json()["warnings"]
    assert any("no cuda trainer" in w for w in cuda)
