"""Short training ids: `ktrdr list` shows the first eight characters, and status, watch and
cancel take any unique prefix, looked up among the newest trainings the key can see."""

from __future__ import annotations

import re

from services.cli.client.http import ApiClient, ApiError

FULL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SHORT = 8  # what `ktrdr list` shows
MIN_PREFIX = 4
PAGE = 500  # the API's largest page
SEARCHED = 2000  # the newest trainings a prefix is looked up among


def short_id(training_id: str) -> str:
    return training_id[:SHORT]


def resolve_id(client: ApiClient, given: str) -> str:
    """The full id `given` names: itself when it is one, else the one training whose id starts
    with it (an ApiError, exit 2, when none or several do)."""
    given = given.strip().lower()
    if FULL_ID.match(given):
        return given
    if len(given) < MIN_PREFIX or not re.fullmatch(r"[0-9a-f-]+", given):
        raise ApiError(
            400, f"{given!r} is neither a training id nor {MIN_PREFIX}+ of its first characters"
        )
    found: list[str] = []
    cursor: str | None = None
    seen = 0
    while seen < SEARCHED:
        page = client.trainings(limit=PAGE, cursor=cursor)
        items = page.get("items") or []
        seen += len(items)
        found += [t["training_id"] for t in items if t["training_id"].startswith(given)]
        cursor = page.get("next")
        if not cursor or len(found) > 1:
            break
    if len(found) == 1:
        return found[0]
    if not found:
        raise ApiError(404, f"no training id starts with {given!r} (among the newest {seen})")
    shown = ", ".join(short_id(f) + "…" for f in found[:5])
    raise ApiError(400, f"{given!r} is the start of several training ids ({shown}): give more")
