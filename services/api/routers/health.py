"""Liveness and readiness probes (no authentication, outside /api/v1's auth by design)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.api.readiness import run_checks

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """Database reachable, broker connected, schema at the code's migration head."""
    parts = getattr(request.app.state, "components", None)
    if parts is None:
        return JSONResponse({"status": "starting", "checks": {}}, status_code=503)
    results = await run_checks(parts)
    ready = all(ok for ok, _ in results.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in results.items()},
        "failed": [name for name, (ok, _) in results.items() if not ok],
    }
    return JSONResponse(body, status_code=200 if ready else 503)
