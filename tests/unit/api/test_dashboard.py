"""The dashboard's files: served by the app at `/` and `/ui/`, without a key (they hold no data),
only from the package's static folder, with a policy that lets the page load nothing from
elsewhere; and the module graph is whole (every import and asset the page names is served)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from services.api.dashboard import STATIC
from tests.unit.api.conftest import Api

IMPORT = re.compile(r"""^\s*import\s+(?:[^'"]*?\s+from\s+)?["']([^"']+)["']""", re.MULTILINE)


def anonymous(api: Api) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://api")


async def test_the_page_is_served_at_the_root_without_a_key(api: Api) -> None:
    async with anonymous(api) as client:
        r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/js/main.js">' in r.text
    policy = r.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy


async def raw_get(api: Api, path: str) -> tuple[int, str]:
    """GET exactly this path through the ASGI app (HTTP clients normalise dot segments away;
    a hostile one need not): (status, content type)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"api")],
        "client": ("127.0.0.1", 50000),
        "server": ("api", 80),
    }
    sent: list[dict[str, Any]] = []
    requested = False
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # then the client goes away
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await api.app(scope, receive, send)
    start = sent[0]
    headers = dict(start["headers"])
    return start["status"], headers[b"content-type"].decode()


async def test_assets_are_served_with_their_types_and_nothing_else_is(api: Api) -> None:
    async with anonymous(api) as client:
        js = await client.get("/ui/js/main.js")
        css = await client.get("/ui/app.css")
        missing = await client.get("/ui/js/nope.js")
        nul = await client.get("/ui/js/main.js%00.css")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for answer in (missing, nul):
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    problem = (404, "application/problem+json")
    assert await raw_get(api, "/ui/js/main.js") == (200, "text/javascript; charset=utf-8")
    assert await raw_get(api, "/ui/../../routers/keys.py") == problem  # outside static/
    assert await raw_get(api, "/ui/../__init__.py") == problem
    # A path under /ui/ only ever reaches the dashboard's file route, never the API.
    assert await raw_get(api, "/ui/../api/v1/trainings") == problem


async def test_the_api_still_needs_a_key(api: Api) -> None:
    async with anonymous(api) as client:
        assert (await client.get("/api/v1/trainings")).status_code == 401
        assert (await client.get("/uix")).status_code == 401  # only /ui/... is open, not /ui*


def test_every_module_import_and_asset_resolves_to_a_served_file() -> None:
    """A broken import leaves a blank page in the browser: check the module graph statically."""
    files = sorted(STATIC.rglob("*.js"))
    assert len(files) >= 10
    seen = set()
    for path in files:
        for target in IMPORT.findall(path.read_text()):
            assert target.startswith("."), f"{path.name} imports {target!r}: only relative files"
            resolved = (path.parent / target).resolve()
            assert resolved.is_file(), f"{path.relative_to(STATIC)} imports missing {target}"
            seen.add(resolved)
    main = (STATIC / "js" / "main.js").resolve()
    assert seen | {main} == {p.resolve() for p in files}, "a module nobody imports"
    index = (STATIC / "index.html").read_text()
    for asset in re.findall(r'(?:src|href)="/ui/([^"]+)"', index):
        assert (STATIC / asset).is_file(), asset


def test_nothing_is_fetched_from_another_origin() -> None:
    for path in STATIC.rglob("*"):
        if path.is_file():
            text = path.read_text()
            urls = set(re.findall(r"https?://[^\s\"')]+", text))
            assert urls <= {"http://www.w3.org/2000/svg"}, f"{path.name}: {urls}"
