"""`ktrdr models list | show | pull | compare | predict | alias | delete`.

With KTRDR_API_URL set (or --api-url), every command goes through the API: the service's model
registry, the caller's tenant (admins: every tenant), downloads verified against the sha256 the
trainer announced. Without it, `list`, `show`, `compare` and `predict` read the local models
folder (KTRDR_MODELS_DIR: what `ktrdr train` saved); `pull`, `alias` and `delete` need the
service.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer

models_app = typer.Typer(
    help="Trained models: list, show, pull, compare, predict; aliases and deletion.",
    no_args_is_help=True,
)
alias_app = typer.Typer(
    help="Aliases (e.g. champion) of the service's models.", no_args_is_help=True
)
models_app.add_typer(alias_app, name="alias")

EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

ApiUrl = typer.Option(
    None, "--api-url", help="The service to ask (default KTRDR_API_URL; unset: the local folder)."
)
ApiKey = typer.Option(None, "--api-key", help="API key (default KTRDR_API_KEY).")
Tenant = typer.Option(None, "--tenant", help="Admins: another tenant's models.")
ModelsDir = typer.Option(None, "--models-dir", help="Local mode: default KTRDR_MODELS_DIR.")


# --- where the models come from --------------------------------------------------------------


def _remote(api_url: str | None) -> str | None:
    """The API URL when the commands go through the API: --api-url, else KTRDR_API_URL."""
    from services.cli.client.http import ClientSettings

    return api_url or ClientSettings().api_url


def _client(api_url: str, api_key: str | None) -> Any:
    from services.cli.client.http import ApiClient, ApiError

    try:
        return ApiClient.from_options(api_url, api_key)
    except ApiError as exc:
        _fail(str(exc), exc.status)


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from services.cli.client.http import ApiError

    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        _fail(str(exc), exc.status)


def _needs_service(command: str) -> NoReturn:
    _fail(
        f"`ktrdr models {command}` works on the service's models: set KTRDR_API_URL (or --api-url)"
    )


def _service_url(api_url: str | None, command: str) -> str:
    """The service's URL for a command that only works against the service."""
    url = _remote(api_url)
    if url is None:
        _needs_service(command)
    return url


def _tenant_params(tenant: str | None) -> dict[str, str]:
    return {"tenant": tenant} if tenant else {}


def _model_path(strategy: str, version: str) -> str:
    from services.api.paths import model_path

    return model_path(strategy, version)


def _paths() -> Any:
    from services.api import paths

    return paths


# --- list ------------------------------------------------------------------------------------


@models_app.command("list")
def list_command(
    strategy: str | None = typer.Option(None, help="Only this strategy's models."),
    tenant: str | None = Tenant,
    models_dir: Path | None = ModelsDir,
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Model versions with their aliases, headline metrics and lineage (symbols, dates, seed,
    training id): the service's when KTRDR_API_URL is set, else the local folder's."""
    from rich.table import Table

    from services.cli.consoles import make_console

    console = make_console()
    url = _remote(api_url)
    if url is None:
        items, where = _local_items(strategy, models_dir)
    else:
        params = {"strategy": strategy, **_tenant_params(tenant)}
        with _client(url, api_key) as client:
            body = _call(
                client.request,
                "GET",
                _paths().MODELS,
                params={k: v for k, v in params.items() if v},
            )
        items, where = body["items"], url
    if not items:
        console.print(f"no models in {where}")
        return
    table = Table(show_edge=False)
    columns = ("tenant", "strategy", "version", "aliases", "created", "test acc", "verdict")
    for column in (*columns, "symbols", "dates", "seed", "training"):
        table.add_column(column, justify="right" if column in ("test acc", "seed") else "left")
    for item in items:
        lineage = item.get("lineage") or {}
        accuracy = item.get("test_accuracy")
        table.add_row(
            item.get("tenant") or "-",
            item["strategy"],
            item["name"],
            ", ".join(item.get("aliases") or []),
            (item.get("created_at") or "?")[:19].replace("T", " "),
            "?" if accuracy is None else f"{accuracy:.3f}",
            _short(item.get("verdict")),
            ",".join(lineage.get("symbols") or []),
            _dates(lineage),
            str(lineage.get("seed", "")),
            (item.get("training_id") or "")[:8],
        )
    console.print(table)


def _local_items(strategy: str | None, models_dir: Path | None) -> tuple[list[dict[str, Any]], str]:
    from libs.pipeline.storage.catalog import list_models
    from services.cli.local_settings import LocalSettings

    root = models_dir or LocalSettings().models_dir
    try:
        infos = list_models(root, strategy=strategy)
    except ValueError as e:
        _fail(str(e))
    items = []
    for info in infos:
        metadata = _read_json(info.path / "metadata.json")
        items.append(
            {
                "tenant": None,
                "strategy": info.strategy,
                "name": info.path.name,
                "aliases": ["latest"] if info.latest else [],
                "created_at": info.created_at,
                "test_accuracy": info.test_accuracy,
                "verdict": None,
                "lineage": metadata.get("lineage") or metadata,
                "training_id": metadata.get("training_id"),
            }
        )
    return items, str(root)


def _short(text: Any, width: int = 40) -> str:
    if not isinstance(text, str):
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


def _dates(lineage: dict[str, Any]) -> str:
    start, end = lineage.get("start_date"), lineage.get("end_date")
    if not start and not end:
        return "all"
    return f"{start or '…'}..{end or '…'}"


# --- show / compare --------------------------------------------------------------------------


def _detail(
    strategy: str,
    version: str,
    *,
    url: str | None,
    api_key: str | None,
    tenant: str | None,
    models_dir: Path | None,
) -> dict[str, Any]:
    """One model version's registry entry and files (metadata, metrics): from the API, or
    from the local folder."""
    if url is not None:
        with _client(url, api_key) as client:
            body: dict[str, Any] = _call(
                client.request, "GET", _model_path(strategy, version), params=_tenant_params(tenant)
            )
            return body
    from libs.pipeline.storage.catalog import ModelNotFoundError, resolve_model_path
    from libs.pipeline.storage.layout import ModelNameError, parse_version_ref
    from services.cli.local_settings import LocalSettings

    ref = parse_version_ref(version)
    if ref is None:
        _fail(f"version: {version!r} is not a version like 1h_v3, v3 or latest")
    try:
        path = resolve_model_path(
            models_dir or LocalSettings().models_dir, strategy, ref.timeframe, ref.version
        )
    except (ModelNotFoundError, ModelNameError) as e:
        _fail(str(e))
    metadata = _read_json(path / "metadata.json")
    return {
        "strategy": strategy,
        "tenant": None,
        "version": path.name,
        "aliases": [],
        "training_id": metadata.get("training_id"),
        "created_at": metadata.get("created_at"),
        "artifact": None,
        "lineage": metadata.get("lineage"),
        "metadata": metadata,
        "metrics": _read_json(path / "metrics.json"),
        "path": str(path),
    }


def _facts(detail: dict[str, Any]) -> dict[str, str]:
    """The lines `show` and `compare` print: identity, headline metrics, lineage."""
    lineage = detail.get("lineage") or {}
    metrics = detail.get("metrics") or {}
    test = metrics.get("test") or {}
    training = metrics.get("training") or {}
    artifact = detail.get("artifact") or {}
    facts = {
        "model": f"{detail['strategy']}/{detail['version']}",
        "tenant": detail.get("tenant") or "-",
        "aliases": ", ".join(detail.get("aliases") or []) or "-",
        "created": str(detail.get("created_at") or "?"),
        "training id": str(detail.get("training_id") or "-"),
        "test accuracy": _num(test.get("accuracy")),
        "balanced accuracy": _num(test.get("balanced_accuracy")),
        "verdict": str(test.get("verdict") or "-"),
        "best epoch": str(training.get("best_epoch", "-")),
        "val loss": _num(training.get("val_loss")),
        "symbols": ", ".join(lineage.get("symbols") or []) or "-",
        "timeframes": ", ".join(lineage.get("timeframes") or []) or "-",
        "dates": _dates(lineage),
        "seed": str(lineage.get("seed", "-")),
        "overrides": _compact(lineage.get("overrides")),
        "strategy sha256": str(lineage.get("strategy_sha256") or "-")[:16],
        "data files": _compact({k: v[:12] for k, v in (lineage.get("data_files") or {}).items()}),
        "code version": str(lineage.get("code_version") or "-"),
        "device": _device(lineage.get("device")),
        "artifact": str(artifact.get("uri") or detail.get("path") or "-"),
        "sha256": str(artifact.get("sha256") or "-"),
        "size": f"{artifact['size']} bytes" if artifact.get("size") is not None else "-",
    }
    return facts


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def _compact(value: Any) -> str:
    import json

    if not value:
        return "-"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _device(device: Any) -> str:
    if not isinstance(device, dict):
        return "-"
    return f"{device.get('type', '?')} {device.get('name', '')}".strip()


@models_app.command("show")
def show_command(
    strategy: str = typer.Argument(..., help="The strategy name."),
    version: str = typer.Argument("latest", help="A version (1h_v3, v3, latest) or an alias."),
    tenant: str | None = Tenant,
    models_dir: Path | None = ModelsDir,
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """One model version: metrics and lineage."""
    from rich.table import Table

    from services.cli.consoles import make_console

    detail = _detail(
        strategy,
        version,
        url=_remote(api_url),
        api_key=api_key,
        tenant=tenant,
        models_dir=models_dir,
    )
    table = Table(show_header=False, show_edge=False)
    table.add_column("", style="bold")
    table.add_column("")
    for name, value in _facts(detail).items():
        table.add_row(name, value)
    make_console().print(table)


@models_app.command("compare")
def compare_command(
    first: str = typer.Argument(..., help="STRATEGY/VERSION, e.g. neuro_mean_reversion/1h_v1."),
    second: str = typer.Argument(..., help="STRATEGY/VERSION or an alias, e.g. .../champion."),
    tenant: str | None = Tenant,
    models_dir: Path | None = ModelsDir,
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Two model versions side by side: metrics and lineage, differences marked with *."""
    from rich.table import Table

    from services.cli.consoles import make_console

    url = _remote(api_url)
    facts = []
    for ref in (first, second):
        strategy, sep, version = ref.partition("/")
        if not sep or not strategy or not version:
            _fail(f"{ref!r}: name a model as STRATEGY/VERSION, e.g. my_strategy/1h_v2")
        detail = _detail(
            strategy, version, url=url, api_key=api_key, tenant=tenant, models_dir=models_dir
        )
        facts.append(_facts(detail))
    table = Table(show_edge=False)
    table.add_column("")
    table.add_column(first)
    table.add_column(second)
    for name in facts[0]:
        a, b = facts[0][name], facts[1][name]
        marker = "*" if a != b and name not in ("model",) else ""
        table.add_row(f"{marker}{name}", a, b)
    make_console().print(table)


# --- pull ------------------------------------------------------------------------------------


@models_app.command("pull")
def pull_command(
    strategy: str = typer.Argument(..., help="The strategy name."),
    version: str = typer.Argument("latest", help="A version (1h_v3, v3, latest) or an alias."),
    out: Path = typer.Option(Path("."), "--out", help="Folder to write into."),
    tenant: str | None = Tenant,
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Download a model of the service, check its sha256, and unpack it into
    `{out}/{strategy}_{version}/` (a model folder `ktrdr models predict --models-dir` reads
    after a move, and `torch` / `json` read as they are)."""
    from services.cli.client.http import ApiError, checked, unreachable

    url = _service_url(api_url, "pull")
    with _client(url, api_key) as client:
        path = f"{_model_path(strategy, version)}/download"
        try:
            with client.http.stream("GET", path, params=_tenant_params(tenant)) as response:
                if response.status_code >= 400:
                    response.read()
                    checked(response)
                expected = response.headers.get("x-checksum-sha256", "")
                name = response.headers.get("x-model-version", version)
                out.mkdir(parents=True, exist_ok=True)
                tar_path = out / f".{strategy}_{name}.tar.part"
                digest = hashlib.sha256()
                with open(tar_path, "wb") as f:
                    for chunk in response.iter_bytes():
                        f.write(chunk)
                        digest.update(chunk)
        except ApiError as exc:
            _fail(str(exc), exc.status)
        except Exception as exc:  # noqa: BLE001 - httpx transport errors: one clear line
            import httpx

            if isinstance(exc, httpx.TransportError):
                error = unreachable(client.base_url, exc)
                _fail(str(error), error.status)
            raise
    if digest.hexdigest() != expected:
        tar_path.unlink(missing_ok=True)
        _fail(f"download of {strategy}/{name}: sha256 {digest.hexdigest()} != {expected}")
    target = out / f"{strategy}_{name}"
    _unpack(tar_path, target)
    tar_path.unlink(missing_ok=True)
    typer.echo(f"{target} (sha256 {expected})")


def _unpack(tar_path: Path, target: Path) -> None:
    from libs.pipeline.storage.save import MODEL_FILES

    if target.exists():
        _fail(f"{target} exists; remove it or pick another --out")
    target.mkdir(parents=True)
    with tarfile.open(tar_path) as tar:
        for member in tar.getmembers():
            if member.name not in MODEL_FILES or not member.isfile():
                _fail(f"unexpected file {member.name!r} in the model archive")
            source = tar.extractfile(member)
            if source is not None:
                with source, open(target / member.name, "wb") as f:
                    f.write(source.read())


# --- aliases and deletion --------------------------------------------------------------------


@alias_app.command("set")
def alias_set_command(
    strategy: str = typer.Argument(..., help="The strategy name."),
    alias: str = typer.Argument(..., help="The alias, e.g. champion."),
    version: str = typer.Argument(..., help="The version it names: 1h_v3, v3."),
    timeframe: str | None = typer.Option(None, help="When the strategy has several."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Point an alias at a version (it moves there from wherever it was)."""
    url = _service_url(api_url, "alias set")
    body: dict[str, Any] = {"version": version}
    if timeframe:
        body["timeframe"] = timeframe
    with _client(url, api_key) as client:
        answer = _call(client.request, "PUT", _paths().alias_path(strategy, alias), json=body)
    moved = answer.get("previous_version")
    was = f" (was v{moved})" if moved is not None and moved != answer["version"] else ""
    typer.echo(f"{strategy}/{alias} -> {answer['name']}{was}")


@alias_app.command("rm")
def alias_rm_command(
    strategy: str = typer.Argument(..., help="The strategy name."),
    alias: str = typer.Argument(..., help="The alias to remove."),
    timeframe: str | None = typer.Option(None, help="When the strategy has several."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Remove an alias."""
    url = _service_url(api_url, "alias rm")
    params = {"timeframe": timeframe} if timeframe else {}
    with _client(url, api_key) as client:
        _delete(client, _paths().alias_path(strategy, alias), params)
    typer.echo(f"{strategy}/{alias} removed")


@models_app.command("delete")
def delete_command(
    strategy: str = typer.Argument(..., help="The strategy name."),
    version: str = typer.Argument(..., help="The version to delete, e.g. 1h_v3."),
    reason: str = typer.Option("", help="Why (recorded in the ModelDeleted event)."),
    tenant: str | None = Tenant,
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Admins: delete a model version of the service (its artifact and its registry entry; a
    ModelDeleted event records it)."""
    url = _service_url(api_url, "delete")
    params = {**_tenant_params(tenant), **({"reason": reason} if reason else {})}
    with _client(url, api_key) as client:
        _delete(client, _model_path(strategy, version), params)
    typer.echo(f"{strategy}/{version} deleted")


def _delete(client: Any, path: str, params: dict[str, str]) -> None:
    import httpx

    from services.cli.client.http import ApiError, checked, unreachable

    try:
        response = client.http.request("DELETE", path, params=params)
    except httpx.TransportError as exc:
        error = unreachable(client.base_url, exc)
        _fail(str(error), error.status)
    if response.status_code >= 400:
        try:
            checked(response)
        except ApiError as exc:
            _fail(str(exc), exc.status)


# --- predict ---------------------------------------------------------------------------------


@models_app.command("predict")
def predict_command(
    strategy: str = typer.Argument(..., help="The strategy name the model was saved under."),
    version: str | None = typer.Option(
        None,
        help="A version (1h_v3, v3, latest). Service: with neither this nor --alias, "
        "champion if set, else latest.",
    ),
    alias: str | None = typer.Option(None, help="Service: an alias, e.g. champion."),
    timeframe: str | None = typer.Option(None, help="Needed when models of several exist."),
    symbol: str | None = typer.Option(None, help="Default: the model's first symbol."),
    bars: int = typer.Option(10, min=1, help="How many of the latest bars to predict."),
    tenant: str | None = Tenant,
    models_dir: Path | None = ModelsDir,
    data_dir: Path | None = typer.Option(None, help="Local mode: default KTRDR_DATA_DIR."),
    api_url: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Signals of a model on the latest bars of a symbol."""
    url = _remote(api_url)
    if url is None:
        if alias is not None:
            _needs_service("predict --alias")
        rows, title, note = _predict_local(
            strategy, version or "latest", timeframe, symbol, bars, models_dir, data_dir
        )
    else:
        rows, title, note = _predict_remote(
            url, api_key, strategy, version, alias, timeframe, symbol, bars, tenant
        )
    _print_predictions(rows, title, note)


def _predict_remote(
    url: str,
    api_key: str | None,
    strategy: str,
    version: str | None,
    alias: str | None,
    timeframe: str | None,
    symbol: str | None,
    bars: int,
    tenant: str | None,
) -> tuple[list[PredictionRow], str, str]:
    if symbol is None:
        _fail("--symbol: name the symbol to predict on (the service has no default)")
    body: dict[str, Any] = {"symbol": symbol, "bars": bars}
    for name, value in (("version", version), ("alias", alias), ("timeframe", timeframe)):
        if value is not None:
            body[name] = value
    path = f"{_paths().MODELS}/{strategy}/predict"
    with _client(url, api_key) as client:
        answer = _call(client.request, "POST", path, json=body, params=_tenant_params(tenant))
    resolved = answer.get("resolved") or {}
    rows = [
        PredictionRow(p["timestamp"], p["signal"], p["probabilities"], p.get("predicted_return"))
        for p in answer["predictions"]
    ]
    via = resolved.get("via", "")
    note = resolved.get("note") or (f"via {via}" if via else "")
    return rows, f"{strategy} {answer['version']} on {answer['symbol']}", note


def _predict_local(
    strategy: str,
    version: str,
    timeframe: str | None,
    symbol: str | None,
    bars: int,
    models_dir: Path | None,
    data_dir: Path | None,
) -> tuple[list[PredictionRow], str, str]:
    from libs.pipeline import dataset
    from libs.pipeline.config.errors import StrategyConfigError
    from libs.pipeline.config.strategy import load_strategy
    from libs.pipeline.data.ohlcv import DataError
    from libs.pipeline.split import Scaler
    from libs.pipeline.storage.catalog import ModelNotFoundError, resolve_model_path
    from libs.pipeline.storage.layout import parse_version_ref
    from libs.pipeline.storage.load import load_model
    from services.cli.local_settings import LocalSettings

    settings = LocalSettings()
    ref = parse_version_ref(version)
    if ref is None:
        _fail(f"version: {version!r} is not a version like 1h_v3, v3 or latest")
    try:
        path = resolve_model_path(
            models_dir or settings.models_dir, strategy, ref.timeframe or timeframe, ref.version
        )
        loaded = load_model(path)
        cfg = load_strategy(loaded.config)
        symbol = symbol or cfg.symbols[0]
        scaler = loaded.features.get("scaler")
        X, index = dataset.prediction_features(
            cfg,
            data_dir or settings.data_dir,
            symbol,
            loaded.feature_names,
            Scaler.from_dict(scaler) if scaler else None,
            last_n=bars,
        )
    except (ModelNotFoundError, StrategyConfigError, DataError, ValueError) as e:
        _fail(str(e))
    prediction = loaded.predict(X)
    names = loaded.class_names if prediction.values is None else ()
    values = prediction.values if prediction.values is not None else [None] * len(index)
    rows = [
        PredictionRow(
            ts.isoformat(),
            label,
            {name: float(p) for name, p in zip(names, probs, strict=False)},
            None if value is None else float(value),
        )
        for ts, label, probs, value in zip(
            index, prediction.labels, prediction.probabilities, values, strict=True
        )
    ]
    return rows, f"{strategy} {path.name} on {symbol}", ""


@dataclass(frozen=True)
class PredictionRow:
    """One bar's prediction: a classifier's probability per class (its own class names: BUY/
    HOLD/SELL, or a regime model's four), or a regression model's predicted return."""

    timestamp: str
    signal: str
    probabilities: dict[str, float]
    predicted_return: float | None = None


def _print_predictions(rows: list[PredictionRow], title: str, note: str) -> None:
    from rich.table import Table

    from services.cli.consoles import make_console

    table = Table(title=title, caption=note or None, show_edge=False)
    classes = list(rows[0].probabilities) if rows else []
    regression = any(row.predicted_return is not None for row in rows)
    columns = ["timestamp", "signal", *(f"P({c})" for c in classes)]
    columns += ["predicted return"] if regression else []
    for column in columns:
        table.add_column(column, justify="left" if column in ("timestamp", "signal") else "right")
    colour = {"BUY": "green", "HOLD": "white", "SELL": "red"}
    for row in rows:
        cells = [f"{row.probabilities.get(c, float('nan')):.3f}" for c in classes]
        if regression:
            value = row.predicted_return
            cells.append("—" if value is None else f"{value:+.5f}")
        label = row.signal
        table.add_row(row.timestamp, f"[{colour.get(label, 'white')}]{label}[/]", *cells)
    make_console().print(table)


# --- helpers ---------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return {}


def _fail(message: str, status: int | None = 0) -> NoReturn:
    """One red line on stderr; exit 3 when the API could not be reached, else 2."""
    from rich.markup import escape

    from services.cli.consoles import make_console

    text = " ".join(line.strip() for line in message.splitlines())
    make_console(stderr=True).print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True)
    raise typer.Exit(EXIT_UNREACHABLE if status is None else EXIT_USAGE)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
