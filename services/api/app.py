"""The FastAPI app factory (architecture.md §2: routers per resource, deps, SSE, the relay task).

Two ways to run it:
- standalone (`ktrdr api`): `create_app(settings)`; the lifespan opens the composition root
  (services/bootstrap.py) from the settings: engine, notifier, store, a bus that connects in the
  background, and the outbox relay when `settings.run_relay`; it closes them on shutdown;
- embedded (`ktrdr up`, tests): `create_app(settings, stack=stack)`; the caller opened the stack
  and owns it (the app never starts or closes its parts, the relay included).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.api.deps import Components
from services.api.errors import install_error_handlers
from services.api.paths import API_PREFIX
from services.api.routers import events, health, models, strategies, trainings
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
            try:
                yield
            finally:
                app.state.components = None

    app = FastAPI(
        title="ktrdr training service",
        version="1",
        description="Submit, follow and cancel trainings of neuro-fuzzy trading models.",
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
    )
    app.state.components = None
    install_error_handlers(app)
    app.include_router(health.router)  # /healthz, /readyz at the root for probes...
    for router in (
        health.router,
        trainings.router,
        events.router,
        strategies.router,
        models.router,
    ):
        app.include_router(router, prefix=API_PREFIX)  # ...and under the prefix like the rest
    return app
