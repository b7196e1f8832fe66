"""The dashboard: the page at `/`, hand-written ES modules and SVG, served by the app itself.

No build step, no CDN, nothing fetched at run time: every asset is a file of `static/`, served
from `/ui/`. The page and its assets hold no data, so they answer without a key
(`auth.open_paths`, `auth.OPEN_PREFIXES`); everything the page shows it reads from `/api/v1`
with the key the user types, which the browser keeps for the session (sessionStorage).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from services.api.errors import not_found

STATIC = Path(__file__).resolve().parent / "static"
ASSETS_PREFIX = "/ui/"
INDEX_PATHS = ("/", "/ui")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page runs only its own scripts and talks only to its own origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Assets change with the code: revalidate each time (they are small, and ETags make it cheap).
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/")
@router.get("/ui")
async def index() -> Response:
    """The dashboard's page (it asks for an API key, then reads everything from /api/v1)."""
    return _file(STATIC / "index.html")


@router.get("/ui/{asset:path}")
async def asset(asset: str) -> Response:
    """One file of the dashboard: only the files of `static/`, nothing outside it."""
    if "\x00" in asset:  # no file has one, and the filesystem calls refuse it
        raise not_found("dashboard file", asset)
    path = (STATIC / asset).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in CONTENT_TYPES:
        raise not_found("dashboard file", asset)
    return _file(path)


def _file(path: Path) -> Response:
    return FileResponse(path, media_type=CONTENT_TYPES[path.suffix], headers=SECURITY_HEADERS)
