"""/api/v1/models: saved models (from the models folder) and predictions on the latest bars.

`{version}` in the path names one saved model of the strategy: `1h_v3` (the folder name),
`1h_latest`, `v3` / `3` or `latest` (when the strategy has models for one timeframe only).
Everything torch-related is imported lazily and runs in a worker thread.

Tenancy: each tenant's models live in its own folder, `{models_dir}/tenants/{tenant}/`, with
its own version numbers, and belong to it through the `models` read model. A caller lists,
reads and predicts with its own tenant's models only: every reference is resolved among the
caller's own rows of the read model before its folder is read (`latest`: the newest version the
tenant trained), and every miss -- another tenant's model included -- answers the same
`model {strategy}/{version} not found`. Admins list every tenant's models (each item names its
tenant) and the models trained outside the service (`ktrdr train`: `{models_dir}/{strategy}/`,
tenant null); they read another tenant's with `?tenant=` (default: their own) and an outside
one with `?local=true`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from libs.events.readmodels import models as models_rm
from libs.events.store.port import EventStore
from libs.pipeline import names
from libs.pipeline.storage.layout import (
    LATEST,
    VersionRef,
    parse_version_ref,
    tenant_dirs,
    tenant_models_dir,
)
from services.api.deps import PartsDep, PrincipalDep, SettingsDep, StoreDep
from services.api.errors import Problem, invalid
from services.api.model_cache import ModelCache
from services.api.paths import model_path
from services.api.principal import Principal
from services.api.schemas import Prediction, PredictRequest, PredictResponse

router = APIRouter(prefix="/models", tags=["models"])


TenantQuery = Annotated[
    str | None,
    Query(
        pattern=names.TENANT.pattern,
        description=(
            "Admins: whose model to read (default: the admin's own tenant). Other callers "
            "see their own tenant's models only; any other tenant reads as not found."
        ),
    ),
]
LocalQuery = Annotated[
    bool,
    Query(
        description=(
            "Admins: read a model trained outside the service (`ktrdr train`, saved under "
            "`{models_dir}/{strategy}/`, no tenant) instead of a tenant's."
        ),
    ),
]


# A model version in the path ('1h_v3', 'latest'): bounded, so no number is too long to parse.
VersionSegment = Annotated[
    str, PathParam(max_length=64, description="e.g. 1h_v3, 1h_latest, v3, latest")
]


@router.get("")
async def list_models(
    settings: SettingsDep, store: StoreDep, principal: PrincipalDep, strategy: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The caller's saved models, each with its `tenant`. Admins get every tenant's models
    and the ones trained outside the service (`tenant` null), each with links that name them."""
    from libs.pipeline.storage.catalog import list_models as list_saved
    from libs.pipeline.storage.layout import ModelNameError

    models_dir = settings.models_dir
    if principal.sees_all_tenants:
        roots = [(None, models_dir), *tenant_dirs(models_dir)]
    else:
        roots = [(principal.tenant, tenant_models_dir(models_dir, principal.tenant))]
    try:
        found = [
            (tenant, info)
            for tenant, root in roots
            for info in await anyio.to_thread.run_sync(list_saved, root, strategy)
        ]
    except ModelNameError as exc:
        raise invalid(exc.field, str(exc)) from None
    if not principal.sees_all_tenants:
        owned = {
            row.key
            for row in await store.find(models_rm.READ_MODEL, where={"tenant": principal.tenant})
        }
        found = [
            (tenant, i)
            for tenant, i in found
            if (tenant, i.strategy, i.timeframe, i.version) in owned
        ]
    query = principal.sees_all_tenants
    return {"items": [_summary(info, tenant, query) for tenant, info in found]}


@router.get("/{strategy}/{version}")
async def get_model(
    strategy: str,
    version: VersionSegment,
    parts: PartsDep,
    principal: PrincipalDep,
    tenant: TenantQuery = None,
    local: LocalQuery = False,
) -> dict[str, Any]:
    """One saved model: metadata, metrics, features and its strategy. Callers read their own
    tenant's models; admins name another tenant with `?tenant=` (default: their own) or a model
    trained outside the service with `?local=true`."""
    settings = parts.settings
    owner, path = await _resolve_for(
        parts.store, principal, settings.models_dir, strategy, version, tenant, local
    )
    loaded = await anyio.to_thread.run_sync(parts.model_cache.get, path)
    return {
        "strategy": strategy,
        "tenant": owner,
        "timeframe": loaded.metadata.get("timeframe"),
        "version": path.name,
        "path": str(path.relative_to(settings.models_dir.resolve())),
        "metadata": loaded.metadata,
        "metrics": loaded.metrics,
        "features": {"count": len(loaded.feature_names), "names": loaded.feature_names},
        "config": loaded.config,
    }


@router.post("/{strategy}/{version}/predict", response_model=PredictResponse)
async def predict(
    strategy: str,
    version: VersionSegment,
    body: PredictRequest,
    parts: PartsDep,
    principal: PrincipalDep,
    tenant: TenantQuery = None,
    local: LocalQuery = False,
) -> PredictResponse:
    """Signals of a saved model on the latest bars of a symbol. Callers predict with their own
    tenant's models; admins name another tenant with `?tenant=` (default: their own) or a model
    trained outside the service with `?local=true`."""
    settings = parts.settings
    if body.bars > settings.max_predict_bars:
        raise invalid("bars", f"at most {settings.max_predict_bars}")
    _, path = await _resolve_for(
        parts.store, principal, settings.models_dir, strategy, version, tenant, local
    )
    rows = await anyio.to_thread.run_sync(
        _predict, parts.model_cache, path, settings.data_dir, body
    )
    return PredictResponse(
        strategy=strategy, version=path.name, symbol=body.symbol, predictions=rows
    )


async def _resolve_for(
    store: EventStore,
    principal: Principal,
    models_dir: Path,
    strategy: str,
    version: VersionSegment,
    tenant: str | None,
    local: bool,
) -> tuple[str | None, Path]:
    """(its tenant, the folder) of the model `{strategy}/{version}` the caller may read (from
    the tenant's folder, or with `local` the folder of models trained outside the service), or
    a 404/422 problem."""
    ref = parse_ref(version)
    if principal.sees_all_tenants:
        if local and tenant is not None:
            raise invalid("local", "name a tenant or local=true, not both")
        owner = None if local else tenant or principal.tenant
        root = models_dir if owner is None else tenant_models_dir(models_dir, owner)
        return owner, await anyio.to_thread.run_sync(resolve_ref, root, strategy, ref)
    if local or (tenant is not None and tenant != principal.tenant):
        _checked_names(strategy, ref)
        raise _not_found(strategy, version)  # not the caller's: reads like a missing model
    # Ownership first, from the read model only: what the disk holds for other tenants (their
    # versions, timeframes) must not shape the answer, so every miss reads the same.
    own = await _own_ref(store, principal, strategy, ref, version)
    root = tenant_models_dir(models_dir, principal.tenant)
    return principal.tenant, await anyio.to_thread.run_sync(_own_path, root, strategy, own, version)


def parse_ref(version: str) -> VersionRef:
    ref = parse_version_ref(version)
    if ref is None:
        raise invalid(
            "version", "use a model folder name like '1h_v3', '1h_latest', 'v3' or 'latest'"
        )
    return ref


def _not_found(strategy: str, version: str) -> Problem:
    return Problem(
        404, f"model {strategy}/{version} not found", kind="not-found", title="Model not found"
    )


def _checked_names(strategy: str, ref: VersionRef) -> None:
    """422 for a strategy or timeframe that is not a model folder name."""
    from libs.pipeline.storage.layout import ModelNameError, validate_name

    try:
        validate_name("strategy", strategy)
        if ref.timeframe is not None:
            validate_name("timeframe", ref.timeframe)
    except ModelNameError as exc:  # the timeframe key comes from the `version` path segment
        raise invalid("strategy" if exc.field == "strategy" else "version", str(exc)) from None


async def _own_ref(
    store: EventStore, principal: Principal, strategy: str, ref: VersionRef, version: str
) -> VersionRef:
    """`ref` made explicit among the tenant's own models: its timeframe (when the tenant has
    models for one timeframe only) and, for `latest`, the tenant's newest version; a 404 when
    the tenant has no such model (whether or not another tenant has)."""
    _checked_names(strategy, ref)
    where: dict[str, Any] = {"strategy": strategy, "tenant": principal.tenant}
    if ref.timeframe is not None:
        where["timeframe"] = ref.timeframe
    rows = await store.find(models_rm.READ_MODEL, where=where)
    if ref.version != LATEST:  # compared here: a huge number never reaches SQL
        rows = [row for row in rows if row.version == ref.version]
    if not rows:
        raise _not_found(strategy, version)
    timeframes = sorted({row.timeframe for row in rows})
    if len(timeframes) > 1:  # the tenant's own timeframes only
        raise invalid(
            "version",
            f"{strategy!r} has models for several timeframes; pick one of {', '.join(timeframes)}",
        )
    newest = max(rows, key=lambda row: row.version)
    return VersionRef(newest.timeframe, newest.version)


def _own_path(models_dir: Path, strategy: str, own: VersionRef, version: str) -> Path:
    """The folder of a model the caller owns; the same 404 when it is gone from disk."""
    from libs.pipeline.storage.catalog import ModelNotFoundError, resolve_model_path
    from libs.pipeline.storage.layout import ModelNameError

    try:
        return resolve_model_path(models_dir, strategy, own.timeframe, own.version).resolve()
    except (ModelNotFoundError, ModelNameError):
        raise _not_found(strategy, version) from None


def resolve(models_dir: Path, strategy: str, version: str) -> Path:
    """The model folder a `{strategy}/{version}` path names on disk, or a 404/422 problem."""
    return resolve_ref(models_dir, strategy, parse_ref(version))


def resolve_ref(models_dir: Path, strategy: str, ref: VersionRef) -> Path:
    """The model folder `ref` names (any tenant's: for admins), or a 404/422 problem."""
    from libs.pipeline.storage.catalog import ModelNotFoundError, resolve_model_path
    from libs.pipeline.storage.layout import ModelNameError

    _checked_names(strategy, ref)
    try:
        path = resolve_model_path(models_dir, strategy, ref.timeframe, ref.version)
    except ModelNotFoundError as exc:
        raise Problem(404, str(exc), kind="not-found", title="Model not found") from None
    except ModelNameError as exc:  # a folder on disk with a timeframe that is not a safe name
        raise invalid("version", str(exc)) from None
    return path.resolve()


def _predict(
    cache: ModelCache, path: Path, data_dir: Path, body: PredictRequest
) -> list[Prediction]:
    from libs.pipeline.config.errors import StrategyConfigError
    from libs.pipeline.config.strategy import load_strategy
    from libs.pipeline.data.ohlcv import DataError
    from libs.pipeline.dataset import prediction_features
    from libs.pipeline.split import Scaler

    loaded = cache.get(path)
    try:
        cfg = load_strategy(loaded.config)
    except StrategyConfigError as exc:
        raise Problem(
            409,
            f"the model's saved strategy no longer loads: {exc}",
            kind="model-unusable",
            title="Model unusable",
        ) from None
    scaler_dict = loaded.features.get("scaler")
    scaler = Scaler.from_dict(scaler_dict) if scaler_dict else None
    try:
        X, index = prediction_features(
            cfg, data_dir, body.symbol, loaded.feature_names, scaler, last_n=body.bars
        )
    except DataError as exc:  # missing file, too few rows, NaNs: all about this symbol's data
        raise invalid("symbol", str(exc)) from None
    if len(X) == 0:
        raise invalid("symbol", f"no bars with complete features for {body.symbol}")
    result = loaded.predict(X)
    names = ("BUY", "HOLD", "SELL")
    return [
        Prediction(
            timestamp=ts.to_pydatetime(),
            signal=label,
            probabilities={n: float(p) for n, p in zip(names, probs, strict=True)},
        )
        for ts, label, probs in zip(index, result.labels, result.probabilities, strict=True)
    ]


def _summary(info: Any, tenant: str | None, query: bool) -> dict[str, Any]:
    """One list item; with `query` (admins) its links name its tenant or `local=true`."""
    link = model_path(info.strategy, info.path.name)
    suffix = ("?local=true" if tenant is None else f"?tenant={tenant}") if query else ""
    return {
        "strategy": info.strategy,
        "tenant": tenant,
        "timeframe": info.timeframe,
        "version": info.version,
        "name": info.path.name,
        "created_at": info.created_at,
        "test_accuracy": info.test_accuracy,
        "latest": info.latest,
        "links": {"self": link + suffix, "predict": f"{link}/predict{suffix}"},
    }
