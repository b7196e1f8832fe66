"""Fuzzing the API with schemathesis, from the app's own OpenAPI document, against the app served
by uvicorn on a loopback port (in-memory stack): without a key every answer but the probes' and
the docs' is 401; with an admin key every response passes ALL of schemathesis's checks (no 5xx,
documented status codes, content types and schemas, auth not ignored, ...). Hypothesis is
derandomized and the number of examples bounded, so the run is the same on every machine.

Hypothesis drives synchronous tests, so the server lives on an event loop of its own in a
background thread and each generated request is sent to it there. Checks that send requests of
their own (e.g. the same request without a key) reach the same server.

One check is configured: `positive_data_acceptance` also expects 400/413/422, because a request
can match the schema and still be wrong in ways no schema states (YAML text that is no strategy,
a model reference that names no version, dates past the data); those answers are problems that
name the field, checked by the other checks.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
import schemathesis.config
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.events.settings import IN_MEMORY_DATABASE_URL
from services.api.app import create_app
from services.api.auth import open_paths
from services.api.settings import ApiSettings
from services.bootstrap import open_stack
from tests.unit.api.conftest import FIXTURES, REPO, bearer, session_key

T = TypeVar("T")
EXAMPLES = 150  # the no-key run: each operation gets several, the whole run a few seconds
EXAMPLES_PER_OPERATION = 15  # the admin run, with every check


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
        # Listening before uvicorn starts: early requests wait in the backlog.
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning")
        self.server = uvicorn.Server(config)
        self.serving = asyncio.create_task(self.server.serve(sockets=[self.listener]))
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=30)

    async def _close(self) -> None:
        await self.client.aclose()
        self.server.should_exit = True
        await self.serving
        self.listener.close()
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
        # The failure limit would answer 429 to the checks that send bad keys on purpose
        # (test_auth.py tests the limit itself).
        auth_failure_burst=1_000_000,
    )
    with AppThread(api_settings) as app:
        yield app


def _request(case: Any, headers: dict[str, str], base_url: str) -> dict[str, Any]:
    kwargs = case.as_transport_kwargs(base_url=base_url)
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


CHECKS_CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "checks": {
            "enabled": True,
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", 400, 401, 403, 404, 409, 413, 422, 429]
            },
        }
    }
)


def _cases(served: AppThread) -> st.SearchStrategy[Any]:
    schema = schemathesis.openapi.from_dict(served.app.openapi(), config=CHECKS_CONFIG)
    operations = [result.ok() for result in schema.get_all_operations()]
    return st.one_of([operation.as_strategy() for operation in operations])


PER_OPERATION = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
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
        response = served.send(_request(case, {}, served.base_url))
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        if httpx.URL(str(response.url)).path not in open_:
            assert response.status_code == 401, (case.method, case.formatted_path)
            assert response.headers["www-authenticate"].startswith("Bearer")

    check()


def test_with_an_admin_key_every_answer_passes_every_check(served: AppThread) -> None:
    """Every operation of the document gets its own examples, so none is left out."""
    key = session_key("admin")[0]
    seen: set[int] = set()
    exercised: set[tuple[str, str]] = set()
    schema = schemathesis.openapi.from_dict(served.app.openapi(), config=CHECKS_CONFIG)
    operations = [result.ok() for result in schema.get_all_operations()]

    for operation in operations:

        @PER_OPERATION
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            request = _request(case, bearer(key), served.base_url)
            response = served.send(request)
            where = (case.method, case.formatted_path, response.text)
            assert response.status_code < 500, where
            assert response.status_code != 401, where
            case.validate_response(response, headers=request["headers"])  # every check
            seen.add(response.status_code)
            exercised.add((case.method, case.path))

        check()
    every_route = {
        (method.upper(), path)
        for path, operations in served.app.openapi()["paths"].items()
        for method in operations
    }
    assert exercised == every_route
    assert {200, 404, 422} <= seen  # the requests got past auth into the routes
