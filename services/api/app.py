"""The FastAPI app factory (architecture.md §2: routers per resource, deps, SSE, the relay task).

Two ways to run it:
- standalone (`ktrdr api`): `create_app(settings)`; the lifespan opens the composition root
  (services/bootstrap.py) from the settings: engine, notifier, store, a bus that connects in the
  background, and the outbox relay when `settings.run_relay`; it closes them on shutdown;
- embedded (`ktrdr up`, tests): `create_app(settings, stack=stack)`; the caller opened the stack
  and owns it (the app never starts or closes its parts, the relay included).

The dashboard (services/api/dashboard) is served at `/`. Every request but the probes, the
dashboard's files (and the docs, when `public_docs`) needs an API key: the
`RequireApiKey` middleware (services/api/auth.py) wraps the whole app, and every router also
depends on `current_principal`. On start, KTRDR_BOOTSTRAP_API_KEY is stored as an admin key if it
is not yet.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from services.api.apikeys import ensure_bootstrap_key, parse_key
from services.api.auth import RequireApiKey
from services.api.dashboard import router as dashboard_router
from services.api.deps import Components, current_principal
from services.api.docs import install_docs
from services.api.edge import ContainErrors, MeasureRequests, RequestLimits
from services.api.errors import install_error_handlers, problem_responses
from services.api.paths import API_PREFIX
from services.api.routers import (
    events,
    health,
    keys,
    metrics,
    models,
    ops,
    strategies,
    trainings,
)
from services.api.settings import ApiSettings
from services.bootstrap import Stack, open_stack

log = logging.getLogger("ktrdr.api")


def create_app(settings: ApiSettings | None = None, *, stack: Stack | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    given = stack

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if given is not None:
            app.state.components = Components.from_stack(settings, given)
            await _bootstrap_key(app.state.components)
            try:
                yield
            finally:
                app.state.components = None
            return
        async with open_stack(
            database=settings,
            broker=settings,
            connect="background",
            relay="on" if settings.run_relay else "off",
        ) as opened:
            app.state.components = Components.from_stack(settings, opened)
            await _bootstrap_key(app.state.components)
            try:
                yield
            finally:
                app.state.components = None

    app = FastAPI(
        title="ktrdr training service",
        version="1",
        description="Submit, follow and cancel trainings of neuro-fuzzy trading models.",
        lifespan=lifespan,
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
    )
    install_docs(app)
    app.state.components = None
    install_error_handlers(app)
    # Added last = outermost: errors, then request limits, then authentication.
    app.add_middleware(RequireApiKey, settings=settings)
    app.add_middleware(RequestLimits, max_bytes=settings.max_body_bytes)
    app.add_middleware(ContainErrors)
    app.add_middleware(MeasureRequests)
    # The probes answer without a key, at the root and under the prefix.
    app.include_router(health.router)
    app.include_router(health.router, prefix=API_PREFIX)
    # The dashboard: its page at / and its assets under /ui/ (no data: the page asks for a key).
    app.include_router(dashboard_router)
    app.include_router(metrics.router)
    for router in (
        trainings.router,
        events.router,
        strategies.router,
        models.router,
        keys.router,
        ops.router,
    ):
        app.include_router(
            router,
            prefix=API_PREFIX,
            dependencies=[Depends(current_principal)],
            responses=problem_responses(),
        )
    return app


async def _bootstrap_key(parts: Components) -> None:
    given = parts.settings.bootstrap_api_key
    if given is not None:
        parse_key(given.get_secret_value())  # a malformed key stops the start (InvalidKeyFormat)
    try:
        if given is not None:
            await ensure_bootstrap_key(parts.store, given.get_secret_value(), generate=False)
            return
        stored = await parts.store.api_keys()
    except Exception as error:  # schema behind, database down: /readyz says which
        log.warning("cannot check the stored API keys on start: %s", error)
        return
    if not stored:
        log.warning(
            "no API key is stored: create an admin key with `ktrdr keys create --local "
            "--role admin` (or set KTRDR_BOOTSTRAP_API_KEY)"
        )
