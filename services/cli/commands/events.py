"""Audit commands over the event store (architecture.md §6 "Audit"):

  ktrdr events replay TRAINING_ID [--as-of POSITION] [--json]   the stream, then its state
  ktrdr projections rebuild [--swap] [--json]                   refold the log, compare, repair

They read the database directly (KTRDR_DATABASE_URL), not the API: an operator's tools that work
when the services are down. `projections rebuild` exits 1 when the read models differ from the
log (and --swap was not given), so it can gate a script.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import typer

from services.cli.commands.db import URL_OPTION, database_url

if TYPE_CHECKING:
    from libs.events.readmodels.trainings import TrainingState
    from libs.events.store.port import StoredEvent
    from libs.events.store.rebuild import RebuildReport

events_app = typer.Typer(help="Read the event log.", no_args_is_help=True)
projections_app = typer.Typer(help="Read models derived from the event log.", no_args_is_help=True)


@events_app.command()
def replay(
    training_id: str = typer.Argument(..., help="The training whose stream to print."),
    as_of: int | None = typer.Option(None, "--as-of", help="Stop at this log position."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    url: str | None = URL_OPTION,
) -> None:
    """Print a training's events in order, then its state folded from them."""
    stored, state = asyncio.run(_replay(database_url(url), training_id, as_of))
    if not stored:
        typer.echo(f"no events for training {training_id!r}", err=True)
        raise typer.Exit(1)
    for item in stored:
        typer.echo(_json_line(item) if as_json else _line(item))
    if not as_json and state is not None:
        typer.echo(
            f"-- state as of position {state.last_position}: {state.status}"
            f" (attempt {state.attempt}, phase {state.phase}, epoch {state.epoch})"
        )


@projections_app.command()
def rebuild(
    swap: bool = typer.Option(
        False, "--swap", help="Replace the live read models with the refold."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    url: str | None = URL_OPTION,
) -> None:
    """Refold the whole log and report whether the read models equal it."""
    report = asyncio.run(_rebuild(database_url(url), swap))
    summary: dict[str, Any] = {
        "equal": report.equal,
        "swapped": report.swapped,
        "events": report.events,
        "position": report.position,
        **report.rows,
        "differences": report.differences_total,
        "events_per_s": round(report.events_per_s),
        "seconds": round(report.seconds, 3),
    }
    if as_json:
        summary["listed"] = [str(d) for d in report.differences]
        typer.echo(json.dumps(summary))
    else:
        verdict = "equal" if report.equal else "NOT equal"
        typer.echo(
            f"read models {verdict} to the log: {report.events} events up to position "
            f"{report.position}, "
            + ", ".join(f"{count} {table}" for table, count in report.rows.items())
            + f"; {summary['events_per_s']:,} events/s"
        )
        for difference in report.differences:
            typer.echo(f"  {difference}")
        if report.differences_total > len(report.differences):
            typer.echo(f"  ... {report.differences_total - len(report.differences)} more")
        if report.swapped:
            typer.echo("live read models replaced by the rebuild")
    if not report.equal and not report.swapped:
        raise typer.Exit(1)


async def _replay(
    url: str, training_id: str, as_of: int | None
) -> tuple[list[StoredEvent], TrainingState | None]:
    from libs.events.readmodels.trainings import fold_stream
    from libs.events.settings import DatabaseSettings
    from services.bootstrap import open_stack

    async with open_stack(database=DatabaseSettings(database_url=url), notifier=False) as stack:
        stored = await stack.store.read_stream(training_id)
    if as_of is not None:
        stored = [s for s in stored if s.position <= as_of]
    return stored, fold_stream([(s.position, s.event) for s in stored])


async def _rebuild(url: str, swap: bool) -> RebuildReport:
    from libs.events.settings import DatabaseSettings
    from libs.events.store.rebuild import rebuild as rebuild_read_models
    from libs.events.store.sql import SqlEventStore
    from services.bootstrap import open_stack

    async with open_stack(database=DatabaseSettings(database_url=url), notifier=False) as stack:
        store = stack.store
        if not isinstance(store, SqlEventStore):  # memory://: no log kept, nothing to rebuild
            raise typer.BadParameter("rebuilding needs a SQL database", param_hint="--database-url")
        return await rebuild_read_models(store, swap=swap)


def _line(stored: Any) -> str:
    event = stored.event
    detail = event.summary()
    when = event.occurred_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]  # milliseconds
    return (
        f"{stored.position:>8}  {when}  {event.type:<17} {event.source:<16} "
        f"a{event.attempt} #{event.seq}  {detail}"
    )


def _json_line(stored: Any) -> str:
    from libs.events.db import json_dumps  # NaN/inf as strings: the line stays valid JSON

    return json_dumps(
        {
            "position": stored.position,
            "recorded_at": stored.recorded_at.isoformat(),
            "event": stored.event.model_dump(mode="json"),
        }
    )


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")
    app.add_typer(projections_app, name="projections")
