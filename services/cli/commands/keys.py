"""`ktrdr keys create | list | revoke | save`: API keys (admin operations).

By default they go through the API (--api-url / KTRDR_API_URL, with an admin key in --api-key /
KTRDR_API_KEY / the config file). With --local they work on the database directly
(KTRDR_DATABASE_URL or --database-url): the way in before any admin key exists, or when the API
is down. A new key is printed once and never again; `ktrdr keys save KEY` stores a key (and the
API's URL) in the user's config file, mode 0600 (services/cli/client/config.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from services.cli.commands.client import ApiKey, ApiUrl, _api_errors, _client
from services.cli.commands.db import URL_OPTION, database_url

keys_app = typer.Typer(help="API keys: create, list, revoke (admin).", no_args_is_help=True)

LOCAL = typer.Option(False, "--local", help="Work on the database, not through the API.")


@keys_app.command()
def create(
    name: str = typer.Argument(..., help="What the key is for (shown in `ktrdr keys list`)."),
    role: str = typer.Option("trainer-user", help="reader | trainer-user | admin"),
    tenant: str | None = typer.Option(None, help="Its tenant (default: yours; --local: default)."),
    expires_in_days: int | None = typer.Option(None, help="Expire after this many days."),
    local: bool = LOCAL,
    url: str | None = URL_OPTION,
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Create a key and print it (this once)."""
    if local:
        made = asyncio.run(_create_local(database_url(url), name, role, tenant, expires_in_days))
    else:
        body: dict[str, Any] = {"name": name, "role": role}
        if tenant is not None:
            body["tenant"] = tenant
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        with _client(api_url, api_key) as client, _api_errors():
            made = client.request("POST", _keys_path(), json=body)
    typer.echo(
        f"created key {made['key_id']} ({made['role']}, tenant {made['tenant']}); "
        "it is shown only this once:"
    )
    typer.echo(made["key"])
    typer.echo("use it with: export KTRDR_API_KEY=<the key>  (or `ktrdr keys save <the key>`)")


@keys_app.command("list")
def list_keys(
    tenant: str | None = typer.Option(None, help="Only this tenant's keys."),
    local: bool = LOCAL,
    url: str | None = URL_OPTION,
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """List keys (never their secrets)."""
    if local:
        items = asyncio.run(_list_local(database_url(url), tenant))
    else:
        params = {"tenant": tenant} if tenant else None
        with _client(api_url, api_key) as client, _api_errors():
            items = client.request("GET", _keys_path(), params=params)["items"]
    typer.echo(f"{'KEY ID':<17} {'TENANT':<12} {'ROLE':<13} {'STATE':<8} {'LAST USED':<20} NAME")
    for k in items:
        state = "active" if k["active"] else ("revoked" if k["revoked_at"] else "expired")
        used = (k["last_used_at"] or "-")[:19]
        typer.echo(
            f"{k['key_id']:<17} {k['tenant']:<12} {k['role']:<13} {state:<8} {used:<20} {k['name']}"
        )


@keys_app.command()
def revoke(
    key_id: str = typer.Argument(..., help="The key id (the hex part after `ktrdr_`)."),
    local: bool = LOCAL,
    url: str | None = URL_OPTION,
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Revoke a key: its next request fails, on every API process."""
    if local:
        found = asyncio.run(_revoke_local(database_url(url), key_id))
        if not found:
            typer.secho(f"error: no key {key_id!r}", fg="red", err=True)
            raise typer.Exit(2)
    else:
        with _client(api_url, api_key) as client, _api_errors():
            client.request("POST", f"{_keys_path()}/{key_id}/revoke")
    typer.echo(f"revoked key {key_id}")


@keys_app.command()
def save(
    key: str = typer.Argument(..., help="The key to send from now on."),
    api_url: str | None = typer.Option(None, "--api-url", help="Also save the API's URL."),
) -> None:
    """Save a key (and URL) in your config file, readable by you only (mode 0600)."""
    from services.api.apikeys import InvalidKeyFormat, parse_key
    from services.cli.client.config import ConfigError, save_config

    try:
        parse_key(key)
        path = save_config({"api_key": key, **({"api_url": api_url} if api_url else {})})
    except (InvalidKeyFormat, ConfigError) as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"saved to {path} (mode 0600)")


def _keys_path() -> str:
    from services.api.paths import KEYS

    return KEYS


async def _create_local(
    url: str, name: str, role: str, tenant: str | None, expires_in_days: int | None
) -> dict[str, Any]:
    from services.api.apikeys import generate_key, new_record

    key = generate_key()
    now = datetime.now(UTC)
    expires = None if expires_in_days is None else now + timedelta(days=expires_in_days)
    try:
        record = new_record(
            key, tenant=tenant or "default", role=role, name=name, expires_at=expires, now=now
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    async with _store(url) as store:
        await store.add_api_key(record)
    return {"key": key, "key_id": record.key_id, "role": role, "tenant": record.tenant}


async def _list_local(url: str, tenant: str | None) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    async with _store(url) as store:
        records = await store.api_keys(tenant=tenant)
    return [
        {
            "key_id": r.key_id,
            "tenant": r.tenant,
            "role": r.role,
            "name": r.name,
            "active": r.usable_at(now),
            "revoked_at": r.revoked_at and r.revoked_at.isoformat(),
            "last_used_at": r.last_used_at and r.last_used_at.isoformat(),
        }
        for r in records
    ]


async def _revoke_local(url: str, key_id: str) -> bool:
    async with _store(url) as store:
        return await store.revoke_api_key(key_id, datetime.now(UTC)) is not None


def _store(url: str) -> Any:
    import contextlib

    from libs.events.settings import DatabaseSettings
    from services.bootstrap import open_stack

    @contextlib.asynccontextmanager
    async def opened() -> Any:
        async with open_stack(database=DatabaseSettings(database_url=url), notifier=False) as stack:
            yield stack.store

    return opened()


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
