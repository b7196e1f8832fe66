"""GET /api/v1/trainings/{id}/events: the SSE progress stream or the JSON audit log.

One URL, two representations chosen by `Accept`. The SSE variant is a FastAPI-native SSE route
(`EventSourceResponse` + a generator of `ServerSentEvent`); since FastAPI picks a route by path
and method only, `AcceptEventStream` makes that route match only requests that accept
`text/event-stream`, and every other request falls through to the JSON route on the same path.
FastAPI's own keep-alive fires after 15 s of silence; ours (`sse_keepalive_s`) is configurable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.routing import APIRoute
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.routing import Match
from starlette.types import Scope

from libs.events.columns import MAX_POSITION
from services.api.auth import key_usable
from services.api.deps import PartsDep, PrincipalDep, StoreDep
from services.api.errors import invalid
from services.api.routers.trainings import visible_training
from services.api.schemas import EventPage
from services.api.sse import event_json, follow_training

router = APIRouter(prefix="/trainings", tags=["events"])

EVENT_STREAM = "text/event-stream"


class AcceptEventStream(APIRoute):
    """Matches only when the client accepts text/event-stream."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and not _accepts_event_stream(scope):
            return Match.NONE, {}
        return match, child


def _accepts_event_stream(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"accept" and EVENT_STREAM.encode() in value.lower():
            return True
    return False


async def _visible(training_id: str, store: StoreDep, principal: PrincipalDep) -> Any:
    return await visible_training(store, principal, training_id)


def _resume_position(
    after: Annotated[
        int | None, Query(ge=0, le=MAX_POSITION, description="resume after this position")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> int:
    """Where a stream resumes: Last-Event-ID (what browsers send on reconnect) wins over ?after."""
    if last_event_id is not None and last_event_id.strip():
        try:
            position = int(last_event_id.strip())
        except ValueError:
            raise invalid("Last-Event-ID", "must be an event position (an integer)") from None
        if not 0 <= position <= MAX_POSITION:
            raise invalid("Last-Event-ID", f"must be an event position (0 to {MAX_POSITION})")
        return position
    return after or 0


async def stream_events(
    training_id: str,
    parts: PartsDep,
    principal: PrincipalDep,
    _state: Annotated[Any, Depends(_visible)],
    after: Annotated[int, Depends(_resume_position)],
) -> AsyncIterator[ServerSentEvent]:
    settings = parts.settings
    store = parts.store

    async def key_still_usable() -> bool:  # a revoke or an expiry ends an open stream too
        return principal.key_id is None or await key_usable(store, principal.key_id)

    async for item in follow_training(
        store,
        parts.notifier,
        training_id,
        after,
        keepalive_s=settings.sse_keepalive_s,
        poll_s=settings.sse_poll_s,
        still_allowed=key_still_usable,
        recheck_s=settings.sse_key_recheck_s,
        stopping=parts.stopping,
    ):
        yield item


# Registered first, so it is tried first; it matches only `Accept: text/event-stream`.
router.add_api_route(
    "/{training_id}/events",
    stream_events,
    methods=["GET"],
    response_class=EventSourceResponse,
    route_class_override=AcceptEventStream,
    include_in_schema=False,
)


@router.get(
    "/{training_id}/events",
    response_model=EventPage,
    responses={
        200: {
            "content": {
                EVENT_STREAM: {
                    "description": (
                        "With `Accept: text/event-stream`: the live SSE stream. `id:` is the "
                        "global position, `event:` the type, `data:` the event JSON. Resume "
                        "with `Last-Event-ID` or `?after=`; the stream ends after the terminal "
                        "event."
                    )
                }
            }
        }
    },
)
async def list_events(
    training_id: str,
    store: StoreDep,
    _state: Annotated[Any, Depends(_visible)],
    after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """The training's events from the log, after position `?after=`, a page at a time (JSON);
    or, with `Accept: text/event-stream`, the live SSE stream."""
    batch = await store.read_stream(training_id, after=after, limit=limit + 1)
    more = len(batch) > limit
    batch = batch[:limit]
    return EventPage(
        events=[event_json(stored) for stored in batch],
        next=batch[-1].position if more else None,
    )
