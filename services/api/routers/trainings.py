"""/api/v1/trainings: submit, list, read (optionally as of a log position), cancel.

Writes append API events through the store, which folds them into the read model in the same
transaction (read-your-writes) and wakes the outbox relay that publishes them to the bus.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Header, Query, Response

from libs import metrics
from libs.events.catalog import Cancelled, CancelRequested, Event, TrainingRequested
from libs.events.columns import MAX_POSITION
from libs.events.readmodels.trainings import CANCELLED, CANCELLING, MAX_PAGE, QUEUED, Status
from libs.pipeline import names
from services.api import idempotency
from services.api.deps import PrincipalDep, SettingsDep, StoreDep, SubmitterDep
from services.api.errors import Problem, invalid, not_found
from services.api.paths import training_path
from services.api.schemas import (
    CancelAccepted,
    CancelTraining,
    Links,
    SubmitAccepted,
    SubmitTraining,
    TrainingPage,
    TrainingView,
)
from services.api.submission import resolve_submission
from services.api.trainer_presence import trainer_warnings

router = APIRouter(prefix="/trainings", tags=["trainings"])

# `seq` of the API's events of a training (its TrainingRequested has 0).
API_SEQ_CANCEL = 1
API_SEQ_CANCELLED = 2
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"  # printable ASCII, no spaces


def links_for(training_id: str) -> Links:
    base = training_path(training_id)
    return Links(self=base, events=f"{base}/events", cancel=f"{base}/cancel")


async def visible_training(store: Any, principal: Any, training_id: str) -> Any:
    """The training's read model, or 404 (also for another tenant's training)."""
    if not could_be_training_id(training_id):
        raise not_found("training", training_id)
    state = await store.get_training(training_id)
    if state is None or not principal.owns(state.tenant):
        raise not_found("training", training_id)
    return state


def could_be_training_id(training_id: str) -> bool:
    """False for an id no stored training can have: a NUL byte, which Postgres text refuses
    (an error there, not a miss), so it must not reach SQL."""
    return "\x00" not in training_id


@router.post(
    "",
    status_code=202,
    response_model=SubmitAccepted,
    responses={
        422: {"description": "invalid request (problem+json)"},
        409: {"description": "Idempotency-Key reused with another body"},
    },
)
async def submit_training(
    body: SubmitTraining,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    principal: SubmitterDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN)
    ] = None,
) -> SubmitAccepted:
    """Submit a training: the strategy (by name, or as YAML text) with optional symbols,
    timeframes, date range, hyper-parameter overrides, seed and device. Everything a trainer
    would fail on is checked first (422 naming the field); accepted requests are queued (202,
    `Location` = the training). The same `Idempotency-Key` returns the same training."""
    hashed = idempotency.request_hash(body)
    if idempotency_key:
        replay = await idempotency.earlier_training(
            store, principal.tenant, idempotency_key, hashed
        )
        if replay is not None:
            state = await store.get_training(replay)
            return _accepted(response, replay, status=state.status if state else QUEUED)
    resolved = await anyio.to_thread.run_sync(resolve_submission, body, settings)
    event = TrainingRequested(
        training_id=str(uuid.uuid4()),
        tenant=principal.tenant,
        source="api",
        strategy_name=resolved.strategy_name,
        strategy=resolved.snapshot,
        symbols=resolved.symbols,
        timeframes=resolved.timeframes,
        start_date=resolved.start_date,
        end_date=resolved.end_date,
        overrides=resolved.overrides,
        seed=body.seed,
        device=body.device,
        requested_by=principal.name,
        idempotency_key=idempotency_key,
    )
    training_id = await idempotency.append_request(
        store, event, principal.tenant, idempotency_key, hashed
    )
    warnings = resolved.warnings + await trainer_warnings(store, body.device)
    return _accepted(response, training_id, status=QUEUED, warnings=warnings)


@router.get("", response_model=TrainingPage)
async def list_trainings(
    store: StoreDep,
    principal: PrincipalDep,
    status: Status | None = None,
    strategy: Annotated[str | None, Query(pattern=names.STRATEGY.pattern)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> TrainingPage:
    """List trainings, newest first, filtered by status and strategy; paged with `?cursor=`
    (the `next` of the previous page). Callers see their tenant's trainings; admins see all."""
    tenant = None if principal.sees_all_tenants else principal.tenant
    try:
        items, next_cursor = await store.list_trainings(
            tenant=tenant, status=status, strategy=strategy, after_cursor=cursor, limit=limit
        )
    except ValueError as exc:  # a cursor the store cannot decode
        raise invalid("cursor", str(exc)) from None
    return TrainingPage(
        items=[TrainingView.of(s, links_for(s.training_id)) for s in items],
        next=None if next_cursor is None else str(next_cursor),
    )


@router.get("/{training_id}", response_model=TrainingView)
async def get_training(
    training_id: str,
    store: StoreDep,
    principal: PrincipalDep,
    as_of: Annotated[int | None, Query(ge=0, le=MAX_POSITION, description="a log position")] = None,
) -> TrainingView:
    """One training's read model (status, phase, progress, metrics, model), or its state as
    of a log position with `?as_of=`."""
    state = await visible_training(store, principal, training_id)
    if as_of is not None:
        state = await store.state_as_of(training_id, as_of)
        if state is None:
            raise invalid(
                "as_of", f"training {training_id!r} has no events at or before position {as_of}"
            )
    return TrainingView.of(state, links_for(training_id))


@router.post(
    "/{training_id}/cancel",
    status_code=202,
    response_model=CancelAccepted,
    responses={
        404: {"description": "unknown training"},
        409: {"description": "the training already finished"},
    },
)
async def cancel_training(
    training_id: str,
    store: StoreDep,
    principal: SubmitterDep,
    body: Annotated[CancelTraining | None, Body()] = None,
) -> CancelAccepted:
    """Cancel a queued or running training (202, status `cancelling`); the trainer stops
    within a batch. A repeated cancel is accepted once; a finished training is 409."""
    state = await visible_training(store, principal, training_id)
    if state.is_terminal:
        raise Problem(
            409,
            f"training {training_id!r} is already {state.status}",
            kind="already-finished",
            title="Training already finished",
        )
    reason = body.reason if body else "cancelled by user"
    # No trainer has started it (attempt 0): nothing is running to stop, so the cancel is
    # terminal at once -- whether or not a trainer for its device is up. A trainer that dequeues
    # it later finds the Cancelled on the control stream and acks it without running a phase.
    # (One that published Started in this very instant gets the CancelRequested and stops within
    # a batch; its own Cancelled then folds into nothing, the training being cancelled already.)
    never_started = state.attempt == 0
    events: list[Event] = []
    if not state.cancel_requested:  # a repeated cancel is accepted, not appended twice
        events.append(
            CancelRequested(
                training_id=training_id,
                tenant=state.tenant,
                source="api",
                reason=reason,
                requested_by=principal.name,
                # The API's events of a training are numbered: TrainingRequested 0, this 1, the
                # Cancelled of a never-started one 2 (each is appended at most once).
                seq=API_SEQ_CANCEL,
            )
        )
    if never_started:
        events.append(
            Cancelled(
                training_id=training_id,
                tenant=state.tenant,
                source="api",
                reason=reason,
                seq=API_SEQ_CANCELLED,
            )
        )
    if events:
        await store.append(events)
        metrics.events_appended(events)
    return CancelAccepted(
        training_id=training_id, status=CANCELLED if never_started else CANCELLING
    )


def _accepted(
    response: Response, training_id: str, *, status: Status, warnings: list[str] | None = None
) -> SubmitAccepted:
    links = links_for(training_id)
    response.headers["Location"] = links.self
    return SubmitAccepted(
        training_id=training_id, status=status, links=links, warnings=warnings or []
    )
