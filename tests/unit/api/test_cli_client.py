"""The client side: SSE parsing, `follow()` reconnecting with Last-Event-ID (no gap, no
duplicate), problem documents turned into ApiError, the watch display's exit codes."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from rich.console import Console

from services.cli.client.http import ApiClient, ApiError
from services.cli.client.sse import follow, parse_sse
from services.cli.client.watch import WatchDisplay
from tests.support import events as make
from tests.unit.api.conftest import tiny_run


def sse_body(events: list[tuple[int, dict]], *, keepalive: bool = True) -> bytes:
    out = ""
    for position, data in events:
        if keepalive:
            out += ": keep-alive\n\n"
        out += f"event: {data['type']}\ndata: {json.dumps(data)}\nid: {position}\n\n"
    return out.encode()


def stream_of(training_id: str) -> list[tuple[int, dict]]:
    return [
        (p, {**e.model_dump(mode="json"), "position": p})
        for p, e in enumerate(tiny_run(training_id, epochs=1, batches=2), start=10)
    ]


def test_parse_sse_skips_comments_and_joins_data_lines() -> None:
    lines = [": ping", "", "event: A", 'data: {"x":', "data: 1}", "id: 5", "", "id: 6", ""]
    assert list(parse_sse(iter(lines))) == [("5", "A", '{"x":\n1}')]


def test_follow_reconnects_with_last_event_id_without_gap_or_duplicate() -> None:
    full = stream_of("t")
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        last = int(request.headers["Last-Event-ID"])
        asked.append(request.headers["Last-Event-ID"])
        rest = [(p, d) for p, d in full if p > last]
        if len(asked) == 1:
            return httpx.Response(200, content=sse_body(rest[:4]))  # drops mid-run
        if len(asked) == 2:  # a server that replays one event too many: still no duplicate
            return httpx.Response(200, content=sse_body([(last, full[0][1]), *rest[:3]]))
        return httpx.Response(200, content=sse_body(rest))

    client = ApiClient("http://api", transport=httpx.MockTransport(handler))
    drops: list[int] = []
    got = list(follow(client, "t", on_reconnect=lambda last, _why: drops.append(last)))
    assert [e.position for e in got] == [p for p, _ in full]
    assert got[-1].type == "Completed"
    assert asked == ["0", str(full[3][0]), str(full[6][0])]
    assert drops == [full[3][0], full[6][0]]


def test_follow_stops_on_a_problem_instead_of_retrying() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404,
            json={
                "type": "x",
                "title": "Not found",
                "status": 404,
                "detail": "training 't' not found",
                "errors": [],
            },
            headers={"content-type": "application/problem+json"},
        )

    client = ApiClient("http://api", transport=httpx.MockTransport(handler))
    with pytest.raises(ApiError) as caught:
        list(follow(client, "t"))
    assert caught.value.status == 404 and "not found" in str(caught.value)


def test_problem_fields_are_in_the_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer k"
        assert request.headers["Idempotency-Key"] == "abc"
        return httpx.Response(
            422,
            json={
                "type": "x",
                "title": "Invalid request",
                "status": 422,
                "detail": "symbols[0]: no data",
                "errors": [
                    {"field": "symbols[0]", "reason": "no data"},
                    {"field": "end_date", "reason": "before start_date"},
                ],
            },
        )

    client = ApiClient("http://api", "k", transport=httpx.MockTransport(handler))
    with pytest.raises(ApiError) as caught:
        client.submit({"strategy": "x"}, idempotency_key="abc")
    text = str(caught.value)
    assert "end_date: before start_date" in text and text.count("no data") == 1


@pytest.mark.parametrize("outcome,code", [("completed", 0), ("failed", 1), ("cancelled", 130)])
def test_watch_display_exit_codes_and_milestones(outcome: str, code: int) -> None:
    out = io.StringIO()
    with WatchDisplay(Console(file=out, width=120), "t") as display:
        for event in tiny_run("t", epochs=2, batches=2, outcome=outcome):
            display.show(event.type, event.model_dump(mode="json"))
    assert display.exit_code == code
    text = out.getvalue()
    assert "phase 9/11: training" in text and "epoch 2/2" in text
    assert outcome in text


def test_watch_prints_the_catalog_summary_of_an_event_it_has_no_view_for() -> None:
    out = io.StringIO()
    event = make.heartbeat()  # no _on_TrainerHeartbeat: stands in for an event type added later
    with WatchDisplay(Console(file=out, width=200), "t") as display:
        display.show(event.type, event.model_dump(mode="json"))
    assert event.summary() in out.getvalue()
    assert display.outcome is None
