"""`ktrdr tail [--routing-key PATTERN]...`: watch events pass on the RabbitMQ bus (ops tool).

Binds an exclusive, auto-deleted queue to the `ktrdr.events` exchange (nothing is taken from the
service queues, nothing is left behind) and prints one line per event, or its JSON with --json.
Named `tail` rather than `events tail` so it stays out of the `events` command group's module.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from libs.events.bus.port import Delivery
    from libs.events.settings import BrokerSettings


def load_settings() -> BrokerSettings:
    """KTRDR_BROKER_URL and KTRDR_TOPOLOGY_PREFIX (imported here: `ktrdr --help` stays fast).
    The default in-process bus cannot be watched from outside; the command says so."""
    from libs.events.settings import BrokerSettings

    return BrokerSettings()


def format_delivery(delivery: Delivery, as_json: bool = False) -> str:
    event = delivery.event
    data = event.model_dump(mode="json")
    if as_json:
        return json.dumps({"routing_key": delivery.routing_key, "event": data})
    summary = event.summary()
    clock = event.occurred_at.strftime("%H:%M:%S.%f")[:-3]
    training = event.training_id or "-"
    return f"{clock}  {delivery.routing_key:<28} {event.type:<18} {training}  {summary}".rstrip()


async def _tail(url: str, patterns: list[str], prefix: str, as_json: bool, count: int) -> None:
    from libs.events.bus.amqp.adapter import AmqpBus
    from libs.events.bus.topology import Topology

    bus = AmqpBus(url, Topology(prefix=prefix), connection_name="ktrdr-tail")
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, done.set)
    shown = 0

    async def show(delivery: Delivery) -> None:
        nonlocal shown
        typer.echo(format_delivery(delivery, as_json))
        shown += 1
        if count and shown >= count:
            done.set()

    await bus.start()
    try:
        await bus.tap(patterns, show)
        typer.echo(
            f"listening on {bus.topology.events_exchange} for {', '.join(patterns)}", err=True
        )
        await done.wait()
    finally:
        await bus.close()


def tail(
    routing_key: list[str] = typer.Option(
        ["#"], "--routing-key", "-k", help="Topic pattern(s) to bind, e.g. 'training.#'."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print each event as one JSON line."),
    count: int = typer.Option(0, min=0, help="Exit after this many events (0: until Ctrl-C)."),
    broker_url: str | None = typer.Option(None, help="Overrides KTRDR_BROKER_URL (amqp://...)."),
    prefix: str | None = typer.Option(None, help="Overrides KTRDR_TOPOLOGY_PREFIX."),
) -> None:
    """Print events as they pass on the bus (RabbitMQ only)."""
    settings = load_settings()
    url = broker_url or settings.broker_url
    if not url.startswith(("amqp://", "amqps://")):
        raise typer.BadParameter(
            "ktrdr tail watches a RabbitMQ broker: set KTRDR_BROKER_URL or --broker-url to "
            f"amqp://... (got {url!r})",
            param_hint="--broker-url",
        )
    topology_prefix = settings.topology_prefix if prefix is None else prefix
    try:
        asyncio.run(_tail(url, routing_key, topology_prefix, as_json, count))
    except OSError as error:  # refused / unreachable broker
        typer.secho(f"error: cannot reach the broker: {error}", fg="red", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command("tail")(tail)
