"""GET /metrics: the process's Prometheus series (libs/metrics.py), for scraping.

Open without a key like the probes (KTRDR_PUBLIC_METRICS=false closes it): it holds counts and
timings, no training data. Before answering, the live trainings are counted from the read model
(`ktrdr_trainings{status}`); if the database does not answer, the last counts stay.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from libs import metrics
from libs.events.readmodels.trainings import CANCELLING, MAX_PAGE, QUEUED, RUNNING

router = APIRouter(tags=["metrics"])
log = logging.getLogger("ktrdr.api")

LIVE_STATUSES = (QUEUED, RUNNING, CANCELLING)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    parts = getattr(request.app.state, "components", None)
    if parts is not None:
        try:
            for status in LIVE_STATUSES:
                metrics.TRAININGS.labels(status=status).set(await _count(parts.store, status))
        except Exception as error:  # noqa: BLE001 - the series stay; /readyz tells why
            log.warning("cannot count trainings for /metrics: %s", error)
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE_LATEST)


async def _count(store: object, status: str) -> int:
    count, cursor = 0, None
    while True:
        items, cursor = await store.list_trainings(  # type: ignore[attr-defined]
            tenant=None, status=status, strategy=None, after_cursor=cursor, limit=MAX_PAGE
        )
        count += len(items)
        if cursor is None:
            return count
