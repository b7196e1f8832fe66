"""GET /strategies, GET /strategies/{name}, POST /strategies/validate."""

from __future__ import annotations

from tests.unit.api.conftest import FIXTURES, Api


async def test_list_and_get(api: Api) -> None:
    (api.settings.strategies_dir / "broken.yaml").write_text("name: [unclosed\n")
    items = (await api.client.get("/api/v1/strategies")).json()["items"]
    by_name = {i["name"]: i for i in items}
    assert by_name["tiny_rsi"]["symbols"] == ["EURUSD"] and by_name["tiny_rsi"]["error"] is None
    assert by_name["broken"]["error"]  # listed with its problem, not hiding the others
    detail = (await api.client.get("/api/v1/strategies/tiny_rsi")).json()
    assert detail["timeframes"] == ["1h"] and detail["unused_sections"] == ["decisions"]
    assert detail["config"]["name"] == "tiny_rsi"
    r = await api.client.get("/api/v1/strategies/nope")
    assert r.status_code == 404 and "tiny_rsi" in r.json()["errors"][0]["reason"]


async def test_validate_ok_with_warnings_and_field_errors(api: Api) -> None:
    text = (FIXTURES / "tiny_rsi.yaml").read_text()
    r = await api.client.post("/api/v1/strategies/validate", json={"strategy_yaml": text})
    assert r.status_code == 200
    assert r.json()["ok"] is True
    assert any("decisions" in w for w in r.json()["warnings"])
    bad = text.replace("period: 14", "periods: 14")
    r = await api.client.post("/api/v1/strategies/validate", json={"strategy_yaml": bad})
    assert r.status_code == 422
    assert any(e["field"].startswith("strategy_yaml.indicators[0]") for e in r.json()["errors"])


async def test_validate_reads_text_as_yaml_never_as_a_file_name(api: Api) -> None:
    # A one-line text naming a readable strategy file is YAML content (a plain string).
    for text in ("strategies/neuro_mean_reversion.yaml", str(FIXTURES / "tiny_rsi.yaml")):
        r = await api.client.post("/api/v1/strategies/validate", json={"strategy_yaml": text})
        assert r.status_code == 422
        (error,) = r.json()["errors"]
        assert error["field"] == "strategy_yaml"
        assert "YAML mapping" in error["reason"]
