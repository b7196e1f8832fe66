"""The app's outer edge: request body size, and errors no route handled.

`ContainErrors` is the outermost of the app's own middlewares. Whatever escapes the routes (and
the auth middleware) becomes a problem document here, and is NOT re-raised: Starlette's
ServerErrorMiddleware re-raises, and uvicorn then closes the connection, so a client's next
request on its keep-alive connection got a TCP reset. A database or broker outage is a `503`
with `Retry-After` (it is nobody's fault and it passes); anything else a logged `500`. An error
after a response started (an SSE stream) can only end that response.

`RequestLimits` answers `413` (problem+json naming the limit) for a body over `max_bytes`, by its
Content-Length before reading anything, or as soon as a streamed body goes past it; and refuses
a path or query parameter holding a character no database can store (text.py).
"""

from __future__ import annotations

import logging
from time import perf_counter
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs import metrics
from libs.events.outage import names_an_outage
from services.api.errors import Problem, invalid, problem_response, unavailable
from services.api.text import REASON, UNSTORABLE

log = logging.getLogger("ktrdr.api")


def _too_large_detail(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes"


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing lets it through as it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large_detail(limit))
        self.limit = limit


def too_large(limit: int) -> Problem:
    return Problem(413, _too_large_detail(limit), kind="content-too-large")


def is_broker_outage(error: BaseException) -> bool:
    from libs.events.bus.port import BusError

    try:
        import aiormq.exceptions as amqp_errors
    except ImportError:  # pragma: no cover - aio-pika is a dependency
        return isinstance(error, BusError)
    return isinstance(error, BusError | amqp_errors.AMQPError)


class ContainErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            if started:
                raise  # mid-response: all that can be done is to end it
            await problem_response(self.problem_for(scope, error))(scope, receive, send)

    @staticmethod
    def problem_for(scope: Scope, error: Exception) -> Problem:
        if isinstance(error, BodyTooLarge):
            return too_large(error.limit)
        where = f"{scope.get('method')} {scope.get('path')}"
        if is_broker_outage(error):
            log.warning("broker unavailable on %s: %s", where, _first_line(error))
            return unavailable("message broker")
        if names_an_outage(error):
            log.warning("database unavailable on %s: %s", where, _first_line(error))
            return unavailable("database")
        log.error("unhandled error on %s", where, exc_info=error)
        return Problem(500, "internal error; it has been logged", kind="internal-error")


class MeasureRequests:
    """ktrdr_http_requests_total{method,route,status} and ktrdr_http_request_seconds, by the
    matched route's template (never the raw path: ids would make endless series)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            metrics.HTTP_SECONDS.labels(method=method, route=route).observe(
                perf_counter() - started
            )


class RequestLimits:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = _unstorable_path_or_query(scope)
        if refused is not None:
            await problem_response(refused)(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                declared = value.decode("latin-1").strip()
                if declared.isdigit() and len(declared) < 20 and int(declared) > self.max_bytes:
                    await problem_response(too_large(self.max_bytes))(scope, receive, send)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


def _route_template(scope: Scope) -> str:
    """The matched route's path with its parameters named (`/api/v1/trainings/{training_id}`);
    "unmatched" when no route matched (a 404, or refused before routing)."""
    if scope.get("route") is None:
        return "unmatched"
    path = str(scope.get("path", ""))
    for name, value in (scope.get("path_params") or {}).items():
        if isinstance(value, str) and value:
            path = path.replace(f"/{value}", f"/{{{name}}}", 1)
    return path


def _unstorable_path_or_query(scope: Scope) -> Problem | None:
    """A path or query parameter no database can hold (see text.py): the path names nothing
    that exists (404), a parameter is invalid (422, naming it)."""
    if UNSTORABLE.search(scope.get("path", "")):
        return Problem(404, "no resource has this path", kind="not-found", title="Not found")
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="surrogateescape"):
        if UNSTORABLE.search(name) or UNSTORABLE.search(value):
            return invalid(name if not UNSTORABLE.search(name) else "query", REASON)
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
