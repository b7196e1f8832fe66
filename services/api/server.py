"""The API's uvicorn server: on shutdown it first ends the open SSE streams (each with a final
comment, so clients reconnect to another process or after the restart), so uvicorn's graceful
wait for open connections is not spent waiting on streams that never end by themselves."""

from __future__ import annotations

from typing import Any

import uvicorn


def end_streams(app: Any) -> None:
    """Tell the app's open SSE streams to finish (services/api/sse.py)."""
    parts = getattr(getattr(app, "state", None), "components", None)
    if parts is not None:
        parts.stopping.set()


class ApiServer(uvicorn.Server):
    async def shutdown(self, sockets: Any = None) -> None:
        end_streams(self.config.app)
        await super().shutdown(sockets=sockets)
