"""/api/v1/models: saved models (from the models folder) and predictions on the latest bars.

`{version}` in the path names one saved model of the strategy: `1h_v3` (the folder name),
`1h_latest`, `v3` / `3` or `latest` (when the strategy has models for one timeframe only).
Everything torch-related is imported lazily and runs in a worker thread.

Tenancy: a model belongs to the tenant of the training that made it (the `models` read model).
A caller sees, reads and predicts with its own tenant's models only (another tenant's answer
404, like a model that does not exist); admins see every model in the folder, including ones
trained outside the service. The folders are shared between tenants, so for a caller who is not
an admin every reference is resolved among the caller's own models, from the read model, before
the disk is read (`latest`: the newest version the tenant trained, never another tenant's), and
every miss answers the same `model {strategy}/{version} not found`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter

from libs.events.readmodels import models as models_rm
from libs.events.store.port import EventStore
from libs.pipeline.storage.layout import LATEST, VersionRef, parse_version_ref
from services.api.deps import PartsDep, PrincipalDep, SettingsDep, StoreDep
from services.api.errors import Problem, invalid
from services.api.model_cache import ModelCache
from services.api.paths import model_path
from services.api.principal import Principal
from services.api.schemas import Prediction, PredictRequest, PredictResponse

router = APIRouter(prefix="/models", tags=["models"])


@router.get("")
async def list_models(
    settings: SettingsDep, store: StoreDep, principal: PrincipalDep, strategy: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    from libs.pipeline.storage.catalog import list_models as list_saved
    from libs.pipeline.storage.layout import ModelNameError

    try:
        found = await anyio.to_thread.run_sync(lambda: list_saved(settings.models_dir, strategy))
    except ModelNameError as exc:
        raise invalid(exc.field, str(exc)) from None
    if not principal.sees_all_tenants:
        owned = {
            row.key
            for row in await store.find(models_rm.READ_MODEL, where={"tenant": principal.tenant})
        }
        found = [i for i in found if (i.strategy, i.timeframe, i.version) in owned]
    return {"items": [_summary(info, settings.models_dir) for info in found]}


@router.get("/{strategy}/{version}")
async def get_model(
    strategy: str, version: str, parts: PartsDep, principal: PrincipalDep
) -> dict[str, Any]:
    settings = parts.settings
    path = await _resolve_for(parts.store, principal, settings.models_dir, strategy, version)
    loaded = await anyio.to_thread.run_sync(parts.model_cache.get, path)
    return {
        "strategy": strategy,
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
    strategy: str, version: str, body: PredictRequest, parts: PartsDep, principal: PrincipalDep
) -> PredictResponse:
    settings = parts.settings
    if body.bars > settings.max_predict_bars:
        raise invalid("bars", f"at most {settings.max_predict_bars}")
    path = await _resolve_for(parts.store, principal, settings.models_dir, strategy, version)
    rows = await anyio.to_thread.run_sync(
        _predict, parts.model_cache, path, settings.data_dir, body
    )
    return PredictResponse(
        strategy=strategy, version=path.name, symbol=body.symbol, predictions=rows
    )


async def _resolve_for(
    store: EventStore, principal: Principal, models_dir: Path, strategy: str, version: str
) -> Path:
    """The folder of the caller's model `{strategy}/{version}`, or a 404/422 problem."""
    ref = parse_ref(version)
    if principal.sees_all_tenants:
        return await anyio.to_thread.run_sync(resolve_ref, models_dir, strategy, ref)
    # Ownership first, from the read model only: what the disk holds for other tenants (their
    # versions, timeframes) must not shape the answer, so every miss reads the same.
    own = await _own_ref(store, principal, strategy, ref, version)
    return await anyio.to_thread.run_sync(_own_path, models_dir, strategy, own, version)


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


def _summary(info: Any, models_dir: Path) -> dict[str, Any]:
    return {
        "strategy": info.strategy,
        "timeframe": info.timeframe,
        "version": info.version,
        "name": info.path.name,
        "created_at": info.created_at,
        "test_accuracy": info.test_accuracy,
        "latest": info.latest,
        "links": {
            "self": model_path(info.strategy, info.path.name),
            "predict": f"{model_path(info.strategy, info.path.name)}/predict",
        },
    }
