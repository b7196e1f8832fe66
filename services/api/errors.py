"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error the API returns has `{type, title, status, detail, errors: [{field, reason}]}`, so a
client can always point at the field that was wrong. Request validation errors are translated
into the same shape; anything unexpected is logged with its traceback and answered with a bare
500 problem that leaks no internals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("ktrdr.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://ktrdr.dev/problems/"


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path into the request, e.g. "overrides.epochs", "symbols[1]"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        kind: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.kind = kind or _slug(HTTPStatus(status).phrase)
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "errors"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}

_ERROR_STATUSES = {
    400: "the request cannot be parsed",
    401: "no valid API key (`WWW-Authenticate: Bearer`)",
    403: "the key's role may not do this",
    404: "no such resource, or another tenant's",
    409: "conflicts with the resource's state",
    413: "the body is over the size limit (stated in `detail`)",
    422: "invalid request: `errors` names each field",
    429: "too many failed authentications from this address (`Retry-After`)",
    503: "the database or the broker is unavailable (`Retry-After`)",
}


def problem_responses() -> dict[int | str, dict[str, Any]]:
    """The error answers every route may give, documented once for the OpenAPI document."""
    return {
        status: {
            "description": description,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
        }
        for status, description in _ERROR_STATUSES.items()
    }


def invalid(field: str, reason: str, *, status: int = 422) -> Problem:
    """One bad field: the common case."""
    return Problem(
        status,
        f"{field}: {reason}",
        errors=[FieldError(field, reason)],
        kind="validation-error",
        title="Invalid request",
    )


def invalid_many(errors: Iterable[FieldError], *, status: int = 422) -> Problem:
    errors = list(errors)
    detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
    return Problem(status, detail, errors=errors, kind="validation-error", title="Invalid request")


RETRY_AFTER_S = 5  # what a 503 asks a client to wait before trying again


def unavailable(what: str) -> Problem:
    """503: a dependency (the database, the broker) does not answer; it is nobody's fault and
    it passes."""
    return Problem(
        503,
        f"the {what} is unavailable; try again shortly",
        kind="unavailable",
        title="Service unavailable",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def not_found(what: str, ident: str) -> Problem:
    return Problem(404, f"{what} {ident!r} not found", kind="not-found", title="Not found")


def problem_response(problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "errors": [e.as_dict() for e in problem.errors],
    }
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=problem.headers
    )


def field_path(loc: Sequence[Any]) -> str:
    """("body", "overrides", "epochs") -> "overrides.epochs"; ("query", "limit") -> "limit";
    list indexes render as "symbols[1]"."""
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(field_path(e.get("loc", ())), _reason(e)) for e in exc.errors()]
        return problem_response(invalid_many(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
        return problem_response(Problem(status, detail, headers=getattr(exc, "headers", None)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            Problem(500, "internal error; it has been logged", kind="internal-error")
        )


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    if error.get("type") == "json_invalid":
        ctx = error.get("ctx") or {}
        return f"invalid JSON: {ctx.get('error', message)}"
    return message


def _slug(phrase: str) -> str:
    return phrase.lower().replace(" ", "-").replace("'", "")
