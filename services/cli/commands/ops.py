"""Operator commands over the admin API: `ktrdr trainers` and `ktrdr dead list|show|requeue|drop`.

They speak HTTP like the client commands (--api-url / KTRDR_API_URL, --api-key / KTRDR_API_KEY,
an admin key) and share their exit codes: 0 ok, 2 refused (its problem printed in one line),
3 unreachable.
"""

from __future__ import annotations

import json

import typer

from services.cli.commands.client import ApiKey, ApiUrl, _api_errors, _client, _console

dead_app = typer.Typer(
    help="Dead-lettered messages (ktrdr.dead) and why they are there.", no_args_is_help=True
)
DEAD = "/api/v1/dead-letters"


def trainers(
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """The trainers (id, device, slots, running trainings, last seen, stale) and the depth and
    consumers of each device request queue."""
    with _client(api_url, api_key) as client, _api_errors():
        answer = client.request("GET", "/api/v1/trainers")
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    from rich.table import Table

    console = _console()
    table = Table(show_edge=False, title="trainers")
    for column in ("trainer", "host", "device", "slots", "running", "last seen", "stale"):
        table.add_column(column)
    for t in answer["trainers"]:
        table.add_row(
            t["trainer_id"],
            t["host"],
            str(t["device"]),
            str(t["slots"]),
            ", ".join(t["running"]) or "-",
            f"{t['last_seen'][:19].replace('T', ' ')} ({t['seen_s_ago']:.0f}s ago)",
            "STALE" if t["stale"] else "",
        )
    console.print(table if answer["trainers"] else "no trainer has sent a heartbeat")
    queues = answer.get("queues")
    if queues is None:
        console.print("queues: the broker is unavailable")
        return
    table = Table(show_edge=False, title="request queues")
    for column in ("queue", "device", "messages", "consumers"):
        table.add_column(column)
    for q in queues:
        table.add_row(q["queue"], q["device"], str(q["messages"]), str(q["consumers"]))
    console.print(table)


@dead_app.command("list")
def dead_list(
    limit: int = typer.Option(100, min=1, max=1000, help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """The dead letters, oldest first: id, type, the queue it died on, and why."""
    with _client(api_url, api_key) as client, _api_errors():
        items = client.request("GET", DEAD, params={"limit": limit})["items"]
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    if not items:
        typer.echo("no dead letters")
        return
    for item in items:
        typer.echo(
            f"{item['id']}  {item['type'] or '?'}  {item['routing_key']}  from "
            f"{item['queue'] or '?'}  [{item['reason_kind']}] {item['reason']}"
        )


@dead_app.command("show")
def dead_show(
    letter_id: str = typer.Argument(..., help="The dead letter's id (from `ktrdr dead list`)."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """One dead letter: its reason, headers and body."""
    with _client(api_url, api_key) as client, _api_errors():
        letter = client.request("GET", f"{DEAD}/{_quoted(letter_id)}")
    typer.echo(json.dumps(letter, indent=2))


@dead_app.command("requeue")
def dead_requeue(
    letter_id: str = typer.Argument(..., help="The dead letter's id."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Publish it again with the routing key it was first published with, and remove it."""
    with _client(api_url, api_key) as client, _api_errors():
        answer = client.request("POST", f"{DEAD}/{_quoted(letter_id)}/requeue")
    typer.echo(f"requeued {answer['id']} ({answer['routing_key']})")


@dead_app.command("drop")
def dead_drop(
    letter_id: str = typer.Argument(..., help="The dead letter's id."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Remove it from ktrdr.dead for good."""
    with _client(api_url, api_key) as client, _api_errors():
        answer = client.request("DELETE", f"{DEAD}/{_quoted(letter_id)}")
    typer.echo(f"dropped {answer['id']}")


def _quoted(letter_id: str) -> str:
    from urllib.parse import quote

    return quote(letter_id, safe="")


def register(app: typer.Typer) -> None:
    app.command("trainers")(trainers)
    app.add_typer(dead_app, name="dead")
