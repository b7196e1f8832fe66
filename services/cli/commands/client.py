"""Client commands against the API: `ktrdr submit | status | list | watch | cancel`.

They only speak HTTP (services/cli/client/), so they work against any `ktrdr up` / `ktrdr api`
reachable at --api-url / KTRDR_API_URL (default http://127.0.0.1:8000), with --api-key /
KTRDR_API_KEY sent as a bearer token.

Exit codes: 0 ok; 2 the API refused the request (bad input, unknown id: its problem is printed);
3 the API could not be reached. `ktrdr watch` (and `submit --watch`) end with the training's
outcome: 0 completed, 1 failed, 130 cancelled; 4 when the user stops watching with Ctrl-C (the
training goes on).

Training ids may be shortened to a unique prefix (`ktrdr list` shows eight characters): status,
watch and cancel look it up among the newest trainings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from services.cli.devices import DeviceClass

EXIT_REFUSED = 2
EXIT_UNREACHABLE = 3
GIVE_UP_AFTER_S = 120.0

ApiUrl = typer.Option(
    None, "--api-url", help="API base URL (default KTRDR_API_URL or http://127.0.0.1:8000)."
)
ApiKey = typer.Option(None, "--api-key", help="API key (default KTRDR_API_KEY).")


def submit(
    strategy: str = typer.Argument(
        ..., help="A strategy name known to the server, or a local YAML file (its text is sent)."
    ),
    symbols: str | None = typer.Option(None, help="Comma-separated symbols (override)."),
    timeframes: str | None = typer.Option(None, help="Comma-separated timeframes (override)."),
    start: str | None = typer.Option(None, help="First date (ISO, UTC, inclusive)."),
    end: str | None = typer.Option(None, help="Last date (ISO, UTC, inclusive)."),
    epochs: int | None = typer.Option(None, help="Override model.training.epochs."),
    batch_size: int | None = typer.Option(None, help="Override model.training.batch_size."),
    learning_rate: float | None = typer.Option(None, help="Override learning_rate."),
    seed: int | None = typer.Option(None, help="Seed (server default 42)."),
    device: DeviceClass | None = typer.Option(
        None, help="Which trainers may take it (default any)."
    ),
    idempotency_key: str | None = typer.Option(
        None, help="Retry-safe key: the same key returns the same training."
    ),
    watch_it: bool = typer.Option(False, "--watch", help="Follow it until it finishes."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Submit a training; prints its id (and follows it with --watch)."""
    body: dict[str, Any] = _strategy_field(strategy)
    overrides = {
        k: v
        for k, v in (
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("learning_rate", learning_rate),
        )
        if v is not None
    }
    body.update(
        {
            k: v
            for k, v in (
                ("symbols", _split(symbols)),
                ("timeframes", _split(timeframes)),
                ("start_date", start),
                ("end_date", end),
                ("seed", seed),
                ("device", device),
                ("overrides", overrides or None),
            )
            if v is not None
        }
    )
    with _client(api_url, api_key) as client, _api_errors():
        accepted = client.submit(body, idempotency_key)
        typer.echo(accepted["training_id"])
        for warning in accepted.get("warnings") or []:  # before it runs: time to cancel
            typer.echo(f"warning: {warning}", err=True)
        code = _watch(client, accepted["training_id"], after=0) if watch_it else 0
    raise typer.Exit(code)


def status(
    training_id: str = typer.Argument(..., help="The training's id, or a unique prefix of it."),
    as_json: bool = typer.Option(False, "--json", help="Print the raw JSON."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Show one training (status, phase, progress, metrics, model, error)."""
    from services.cli.client.tables import training_table

    with _client(api_url, api_key) as client, _api_errors():
        view = client.training(resolve_id(client, training_id))
    if as_json:
        typer.echo(_json(view))
        return
    _console().print(training_table(view))


def list_trainings(
    status_filter: str | None = typer.Option(
        None, "--status", help="queued | running | cancelling | completed | failed | cancelled"
    ),
    strategy: str | None = typer.Option(None, help="Only this strategy."),
    limit: int = typer.Option(20, min=1, max=500, help="How many (newest first)."),
    cursor: str | None = typer.Option(None, help="The `next` cursor of a previous page."),
    as_json: bool = typer.Option(False, "--json", help="Print the raw JSON page."),
    wide: bool = typer.Option(
        False, "--wide", help="Full ids, best validation loss and model (wider than 80 columns)."
    ),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """List trainings, newest first (short ids: any unique prefix works as an id)."""
    from services.cli.client.tables import trainings_table

    with _client(api_url, api_key) as client, _api_errors():
        page = client.trainings(status=status_filter, strategy=strategy, limit=limit, cursor=cursor)
    if as_json:
        typer.echo(_json(page))
        return
    console = _console()
    console.print(trainings_table(page["items"], wide=wide))
    if page.get("next"):
        console.print(f"more: ktrdr list --cursor {page['next']}")


def watch(
    training_id: str = typer.Argument(..., help="The training's id, or a unique prefix of it."),
    after: int = typer.Option(0, help="Resume after this event position."),
    as_json: bool = typer.Option(False, "--json", help="One JSON event per line."),
    give_up_after: float = typer.Option(
        GIVE_UP_AFTER_S, min=0.0, help="Seconds of failed reconnects before giving up (exit 3)."
    ),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Follow a training live until it finishes (exit 0 completed, 1 failed, 130 cancelled;
    Ctrl-C stops watching, not the training: exit 4)."""
    with _client(api_url, api_key) as client, _api_errors():
        training_id = resolve_id(client, training_id)
        code = _watch(
            client, training_id, after=after, as_json=as_json, give_up_after_s=give_up_after
        )
    raise typer.Exit(code)


def cancel(
    training_id: str = typer.Argument(..., help="The training's id, or a unique prefix of it."),
    reason: str | None = typer.Option(None, help="Recorded with the cancellation."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Ask a queued or running training to stop."""
    with _client(api_url, api_key) as client, _api_errors():
        answer = client.cancel(resolve_id(client, training_id), reason)
    typer.echo(f"{answer['training_id']} {answer['status']}")


def _watch(
    client: Any,
    training_id: str,
    *,
    after: int,
    as_json: bool = False,
    give_up_after_s: float = GIVE_UP_AFTER_S,
) -> int:
    from services.cli.client.sse import follow
    from services.cli.client.watch import EXIT_CODES, EXIT_DETACHED, EXIT_FAILED, WatchDisplay

    if as_json:
        outcome = None
        try:
            for event in follow(client, training_id, after=after, give_up_after_s=give_up_after_s):
                typer.echo(_json(event.data))
                outcome = event.type
        except KeyboardInterrupt:
            return EXIT_DETACHED
        return EXIT_CODES.get(outcome or "", EXIT_FAILED)
    with WatchDisplay(_console(), training_id) as display:
        try:
            for event in follow(
                client,
                training_id,
                after=after,
                on_reconnect=display.reconnecting,
                give_up_after_s=give_up_after_s,
            ):
                display.show(event.type, event.data)
        except KeyboardInterrupt:
            display.detached()
            return EXIT_DETACHED
    return display.exit_code


@contextmanager
def _api_errors() -> Iterator[None]:
    """An ApiError becomes a red line on stderr and exit 2 (refused) or 3 (unreachable)."""
    from services.cli.client.http import ApiError

    try:
        yield
    except ApiError as exc:
        _fail(exc)


def _fail(exc: Any) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False).print(f"[red]error:[/] {escape(str(exc))}")
    raise typer.Exit(EXIT_UNREACHABLE if exc.status is None else EXIT_REFUSED)


def resolve_id(client: Any, given: str) -> str:
    from services.cli.client.ids import resolve_id as resolve

    return str(resolve(client, given))


def _strategy_field(strategy: str) -> dict[str, Any]:
    path = Path(strategy)
    if path.suffix.lower() in {".yaml", ".yml"} or path.parent != Path("."):
        if not path.is_file():
            raise typer.BadParameter(f"file {path} does not exist", param_hint="STRATEGY")
        return {"strategy_yaml": path.read_text(encoding="utf-8")}
    return {"strategy": strategy}


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()] or None


def _client(api_url: str | None, api_key: str | None) -> Any:
    from services.cli.client.http import ApiClient

    return ApiClient.from_options(api_url, api_key)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.command("status")(status)
    app.command("list")(list_trainings)
    app.command("watch")(watch)
    app.command("cancel")(cancel)
