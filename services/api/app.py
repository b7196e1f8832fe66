"""The FastAPI app factory (DESIGN §2: routers per resource, deps, SSE, the relay task).

Two ways to run it:
- standalone (`ktrdr api`): `create_app(settings)`; the lifespan builds the engine, notifier,
  store and bus from the settings, runs the outbox relay, and closes everything on shutdown;
- embedded (`ktrdr up`, tests): `create_app(settings, store=..., notifier=..., bus=...)`; the
  caller owns those parts (the app never closes them). The relay runs in the app only when a
  bus is given and `run_relay` (default: `settings.run_relay`) is true.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.api.deps import Components
from services.api.errors import install_error_handlers
from services.api.routers import events, health, models, strategies, trainings
from services.api.runtime import RelayTask, standalone_components
from services.api.settings import ApiSettings

log = logging.getLogger("ktrdr.api")

API_PREFIX = "/api/v1"


def create_app(
    settings: ApiSettings | None = None,
    *,
    store: Any | None = None,
    notifier: Any | None = None,
    bus: Any | None = None,
    run_relay: bool | None = None,
) -> FastAPI:
    settings = settings or ApiSettings()
    embedded = store is not None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if embedded:
            parts = Components(
                settings=settings,
                store=store,
                notifier=notifier if notifier is not None else store.notifier,
                bus=bus,
                engine=store.engine,
            )
            if parts.notifier is None:
                raise ValueError("create_app: pass a notifier (or a store built with one)")
            if bus is not None:
                parts.bus_ready.set()  # the caller started it
            relay = RelayTask(store, bus, parts.notifier)
            if bus is not None and (settings.run_relay if run_relay is None else run_relay):
                relay.start()
            parts.relay = relay
            app.state.components = parts
            try:
                yield
            finally:
                app.state.components = None
                await relay.stop()
        else:
            async with standalone_components(settings, run_relay=run_relay) as parts:
                app.state.components = parts
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
        app.include_router(router, prefix=API_PREFIX)  # ...and under /api/v1 like the rest
    return app
