"""Fuzzing the API with schemathesis, from the app's own OpenAPI document, in process (ASGI, no
network): without a key every answer but the probes' and the docs' is 401; with an admin key
no answer is a 5xx. Hypothesis is derandomized and the number of examples bounded, so the run is
the same on every machine and takes seconds.

Hypothesis drives synchronous tests, so the app (on the in-memory stack) lives on an event loop
of its own in a background thread and each generated request is sent to it there.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.events.settings import IN_MEMORY_DATABASE_URL
from services.api.app import create_app
from services.api.auth import open_paths
from services.api.settings import ApiSettings
from services.bootstrap import open_stack
from tests.unit.api.conftest import FIXTURES, REPO, bearer, session_key

T = TypeVar("T")
EXAMPLES = 150  # per run: each operation gets several, the whole run a few seconds


class AppThread:
    """The API on the in-memory stack, served on its own event loop in a thread."""

    def __init__(self, api_settings: ApiSettings) -> None:
        self.settings = api_settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._exits: list[Any] = []

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def __enter__(self) -> AppThread:
        self.thread.start()
        self.run(self._open())
        return self

    def __exit__(self, *exc: Any) -> None:
        self.run(self._close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _open(self) -> None:
        stack_context = open_stack(database=self.settings, broker=self.settings, connect="now")
        stack = await stack_context.__aenter__()
        self._exits.append(stack_context)
        await stack.store.add_api_key(session_key("admin")[1])
        self.app = create_app(self.settings, stack=stack)
        life = self.app.router.lifespan_context(self.app)
        await life.__aenter__()
        self._exits.append(life)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://api", timeout=30
        )

    async def _close(self) -> None:
        await self.client.aclose()
        for context in reversed(self._exits):
            await context.__aexit__(None, None, None)

    def send(self, kwargs: dict[str, Any]) -> httpx.Response:
        return self.run(self.client.request(**kwargs))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppThread]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    (folder / "strategies").mkdir()
    (folder / "strategies" / "tiny_rsi.yaml").write_text((FIXTURES / "tiny_rsi.yaml").read_text())
    api_settings = ApiSettings(
        database_url=IN_MEMORY_DATABASE_URL,
        broker_url="memory://",
        topology_prefix=f"f{uuid.uuid4().hex[:8]}.",
        strategies_dir=folder / "strategies",
        data_dir=REPO / "data",
        models_dir=folder / "models",
    )
    with AppThread(api_settings) as app:
        yield app


def _request(case: Any, headers: dict[str, str]) -> dict[str, Any]:
    kwargs = case.as_transport_kwargs(base_url="http://api")
    sent = {k: v for k, v in kwargs["headers"].items() if k.lower() != "authorization"}
    request = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": {**sent, **headers},
        "params": kwargs.get("params"),
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content"] = data if isinstance(data, bytes | str) else str(data)
    return request


def _cases(served: AppThread) -> st.SearchStrategy[Any]:
    schema = schemathesis.openapi.from_dict(served.app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    return st.one_of([operation.as_strategy() for operation in operations])


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_without_a_key_every_answer_is_401_but_the_open_routes(served: AppThread) -> None:
    open_ = open_paths(served.settings)

    @FUZZ
    @given(case=_cases(served))
    def check(case: Any) -> None:
        response = served.send(_request(case, {}))
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        if httpx.URL(str(response.url)).path not in open_:
            assert response.status_code == 401, (case.method, case.formatted_path)
            assert response.headers["www-authenticate"].startswith("Bearer")

    check()


def test_with_an_admin_key_no_answer_is_a_server_error(served: AppThread) -> None:
    key = session_key("admin")[0]
    seen: set[int] = set()

    @FUZZ
    @given(case=_cases(served))
    def check(case: Any) -> None:
        response = served.send(_request(case, bearer(key)))
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        assert response.status_code != 401, (case.method, case.formatted_path, response.text)
        seen.add(response.status_code)

    check()
    assert {200, 404, 422} <= seen  # the requests got past auth into the routes
