"""The API reference works offline: /docs and /redoc reference no outside URL, the assets they
load are served by the app, and every route has a summary and a description."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.unit.api.conftest import Api

URL = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]?([^'" )>]+)""", re.IGNORECASE)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_reference_no_external_url_and_their_assets_are_served(
    api: Api, page: str
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://api"
    ) as anonymous:  # public docs: no key needed, the assets included
        r = await anonymous.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
        referenced = [u for u in URL.findall(r.text) if u.startswith("/")]
        assert any(u.endswith(".js") for u in referenced), referenced
        for url in referenced:
            asset = await anonymous.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100, url


def test_every_route_has_a_summary_and_a_description(api: Api) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, operations in api.app.openapi()["paths"].items()
        for method, operation in operations.items()
        if not operation.get("summary") or not operation.get("description")
    ]
    assert missing == []
