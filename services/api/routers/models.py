"""/api/v1/models: the model registry (the `models` and `model_aliases` read models), model
downloads from the artifact store, aliases, deletions and predictions.

A model version is listed once its trainer has published its bytes to the artifact store and
checked them (size, sha256), and announced them in `Completed`; the registry is the read model
folded from those events, never a folder scan, so a model whose upload was cut short is never
listed. The API reads the bytes from the artifact store (KTRDR_ARTIFACTS_URL) and unpacks them,
verified, into its own cache (`{models_dir}/.artifact-cache/{sha256}`) to load them: trainers
and the API share no folder.

`{version}` in a path names one version of the strategy: `1h_v3`, `v3` / `3`, `1h_latest` or
`latest`, or an alias (`champion`, `1h_champion`); the timeframe may be left out when the tenant
has models of one timeframe only (else `?timeframe=`). `latest` is automatic: the newest version
not deleted. Aliases are set and removed over the API (events on the model's training stream,
audited like the rest of the log). Predicting without a version or alias
(`POST /models/{strategy}/predict`) uses `champion` when it is set, else `latest`, and says which.

Tenancy: a caller lists, reads, downloads and predicts with its own tenant's models only, and
every miss -- another tenant's model included -- answers the same `model {strategy}/{version}
not found`. Admins see every tenant's models (each item names its tenant), name another tenant
with `?tenant=`, and read the models trained outside the service (`ktrdr train`, in
`{models_dir}/{strategy}/`) with `?local=true`. Deleting a version is for admins: the
`ModelDeleted` event hides it, then its artifact is removed.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse

from libs.events import catalog as ev
from libs.events.readmodels import model_aliases as aliases_rm
from libs.events.readmodels import models as models_rm
from libs.events.readmodels.models import ModelRow
from libs.pipeline import names
from libs.pipeline.storage.layout import (
    LATEST,
    VersionRef,
    parse_version_ref,
    tenant_models_dir,
)
from services.api.deps import AdminDep, PartsDep, PrincipalDep, SubmitterDep
from services.api.errors import Problem, invalid
from services.api.model_cache import ModelCache
from services.api.paths import model_path
from services.api.principal import Principal
from services.api.schemas import (
    Prediction,
    PredictRequest,
    PredictResponse,
    PredictWithRequest,
    Resolved,
    SetAlias,
)

router = APIRouter(prefix="/models", tags=["models"])

CHAMPION = "champion"
# An alias: lower-case letters, digits and dashes; never `latest` (automatic) nor `v{N}`.
ALIAS = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_VERSION_LIKE = re.compile(r"^v\d+$")
CACHE_FOLDER = ".artifact-cache"
SHA256_HEADER = "X-Checksum-SHA256"

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
TimeframeQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=r"^[A-Za-z0-9-]+$",
        description="The timeframe key, when the tenant has models of several.",
    ),
]


# A model version or alias in the path ('1h_v3', 'latest', 'champion'): bounded, so no number is
# too long to parse.
VersionSegment = Annotated[
    str, PathParam(max_length=64, description="e.g. 1h_v3, 1h_latest, v3, latest, champion")
]

Via = Literal["version", "alias", "latest"]


@dataclass(frozen=True)
class Found:
    """A model version a caller may read: its registry row (None for a local model) and the
    folder or artifact it lives in."""

    tenant: str | None
    strategy: str
    timeframe: str
    version: int
    row: ModelRow | None
    local_path: Path | None  # models trained outside the service, and pre-artifact versions
    via: Via
    alias: str | None = None

    @property
    def name(self) -> str:
        return f"{self.timeframe}_v{self.version}"

    def resolved(self, note: str = "", via: str | None = None) -> Resolved:
        return Resolved(
            tenant=self.tenant,
            timeframe=self.timeframe,
            version=self.version,
            name=self.name,
            via=via or self.via,
            alias=self.alias,
            note=note,
        )


# --- listing --------------------------------------------------------------------------------


@router.get("")
async def list_models(
    parts: PartsDep,
    principal: PrincipalDep,
    strategy: str | None = None,
    tenant: TenantQuery = None,
) -> dict[str, list[dict[str, Any]]]:
    """The caller's model versions (not deleted), newest first per strategy and timeframe, each
    with its tenant, aliases (`latest` included), artifact and lineage. Admins get every
    tenant's (or `?tenant=`'s) and the models trained outside the service (`tenant` null)."""
    from libs.pipeline.storage.catalog import list_models as list_saved
    from libs.pipeline.storage.layout import ModelNameError, validate_name

    if strategy is not None:
        try:
            validate_name("strategy", strategy)
        except ModelNameError as exc:
            raise invalid("strategy", str(exc)) from None
    if not principal.sees_all_tenants:
        if tenant is not None and tenant != principal.tenant:
            return {"items": []}
        tenant = principal.tenant
    where: dict[str, Any] = {}
    if tenant is not None:
        where["tenant"] = tenant
    if strategy is not None:
        where["strategy"] = strategy
    store = parts.store
    rows = [r for r in await store.find(models_rm.READ_MODEL, where=where) if r.deleted_at is None]
    alias_rows = await store.find(aliases_rm.READ_MODEL, where=where)
    admin = principal.sees_all_tenants
    items = [_row_item(row, rows, alias_rows, admin) for row in _ordered(rows)]
    if admin and tenant is None:
        local = await anyio.to_thread.run_sync(list_saved, parts.settings.models_dir, strategy)
        items += [_local_item(info) for info in local]
    return {"items": items}


def _ordered(rows: list[ModelRow]) -> list[ModelRow]:
    return sorted(rows, key=lambda r: (r.tenant, r.strategy, r.timeframe, -r.version))


def _aliases_of(row: ModelRow, rows: list[ModelRow], alias_rows: list[Any]) -> list[str]:
    same = [r for r in rows if r.key[:3] == row.key[:3] and r.deleted_at is None]
    names_ = [LATEST] if same and max(r.version for r in same) == row.version else []
    names_ += sorted(
        a.alias
        for a in alias_rows
        if (a.tenant, a.strategy, a.timeframe) == row.key[:3] and a.version == row.version
    )
    return names_


def _links(strategy: str, name: str, suffix: str) -> dict[str, str]:
    link = model_path(strategy, name)
    return {
        "self": link + suffix,
        "download": f"{link}/download{suffix}",
        "predict": f"{link}/predict{suffix}",
    }


def _row_item(
    row: ModelRow, rows: list[ModelRow], alias_rows: list[Any], admin: bool
) -> dict[str, Any]:
    aliases = _aliases_of(row, rows, alias_rows)
    metrics = row.test_metrics or {}
    return {
        "strategy": row.strategy,
        "tenant": row.tenant,
        "timeframe": row.timeframe,
        "version": row.version,
        "name": row.name,
        "created_at": row.created_at.isoformat(),
        "training_id": row.training_id,
        "test_accuracy": metrics.get("accuracy"),
        "verdict": metrics.get("verdict"),
        "latest": LATEST in aliases,
        "aliases": aliases,
        "artifact": row.artifact,
        "lineage": row.lineage,
        "links": _links(row.strategy, row.name, f"?tenant={row.tenant}" if admin else ""),
    }


def _local_item(info: Any) -> dict[str, Any]:
    return {
        "strategy": info.strategy,
        "tenant": None,
        "timeframe": info.timeframe,
        "version": info.version,
        "name": info.path.name,
        "created_at": info.created_at,
        "training_id": None,
        "test_accuracy": info.test_accuracy,
        "verdict": None,
        "latest": info.latest,
        "aliases": [LATEST] if info.latest else [],
        "artifact": None,
        "lineage": None,
        "links": _links(info.strategy, info.path.name, "?local=true"),
    }


# --- one version ----------------------------------------------------------------------------


@router.get("/{strategy}/{version}")
async def get_model(
    strategy: str,
    version: VersionSegment,
    parts: PartsDep,
    principal: PrincipalDep,
    tenant: TenantQuery = None,
    local: LocalQuery = False,
    timeframe: TimeframeQuery = None,
) -> dict[str, Any]:
    """One model version: its registry entry (artifact, lineage, aliases) and, from its files,
    metadata, metrics, features and strategy."""
    found = await _find(parts, principal, strategy, version, tenant, local, timeframe)
    path = await _folder(parts, found)
    loaded = await anyio.to_thread.run_sync(parts.model_cache.get, path)
    row = found.row
    aliases: list[str] = []
    if row is not None:
        rows, alias_rows = await _tenant_rows(parts, row.tenant, strategy)
        aliases = _aliases_of(row, rows, alias_rows)
    return {
        "strategy": strategy,
        "tenant": found.tenant,
        "timeframe": found.timeframe,
        "version": found.name,
        "number": found.version,
        "aliases": aliases,
        "training_id": row.training_id if row else None,
        "created_at": row.created_at.isoformat() if row else loaded.metadata.get("created_at"),
        "artifact": row.artifact if row else None,
        # A folder under the API's models dir: models trained outside the service, and
        # versions saved before the artifact store (None for the others).
        "path": _relative(found.local_path, parts.settings.models_dir),
        "lineage": (row.lineage if row else None) or loaded.metadata.get("lineage"),
        "metadata": loaded.metadata,
        "metrics": loaded.metrics,
        "features": {"count": len(loaded.feature_names), "names": loaded.feature_names},
        "config": loaded.config,
    }


@router.get("/{strategy}/{version}/download")
async def download_model(
    strategy: str,
    version: VersionSegment,
    parts: PartsDep,
    principal: PrincipalDep,
    tenant: TenantQuery = None,
    timeframe: TimeframeQuery = None,
) -> StreamingResponse:
    """The model's artifact (a tar of its files), streamed, with its sha256 in the
    `X-Checksum-SHA256` header (and `Repr-Digest`): the sha256 its `Completed` announced."""
    found = await _find(parts, principal, strategy, version, tenant, False, timeframe)
    artifact = found.row.artifact if found.row else None
    if artifact is None:
        raise Problem(
            409,
            f"model {strategy}/{found.name} predates the artifact store: it has no artifact",
            kind="no-artifact",
        )
    store = parts.artifacts
    stored = await anyio.to_thread.run_sync(store.stat, artifact["key"])
    if stored is None or stored.sha256 != artifact["sha256"]:
        raise Problem(
            503,
            f"model {strategy}/{found.name}: its artifact is missing or does not match the "
            "registry's sha256",
            kind="artifact-unavailable",
        )
    digest = base64.b64encode(bytes.fromhex(stored.sha256)).decode()
    filename = f"{strategy}_{found.name}.tar"
    headers = {
        SHA256_HEADER: stored.sha256,
        "Repr-Digest": f"sha-256=:{digest}:",
        "Content-Length": str(stored.size),
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Model-Version": found.name,
    }
    return StreamingResponse(
        store.iter_chunks(artifact["key"]), media_type="application/x-tar", headers=headers
    )


@router.delete("/{strategy}/{version}", status_code=204)
async def delete_model(
    strategy: str,
    version: VersionSegment,
    parts: PartsDep,
    principal: AdminDep,
    tenant: TenantQuery = None,
    timeframe: TimeframeQuery = None,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """Admins: delete one model version (a `ModelDeleted` event: it is listed no more, its
    aliases stop resolving to it), then its artifact. Name the version explicitly."""
    ref = parse_ref(version)
    if ref.version == LATEST:
        raise invalid("version", "name the version to delete explicitly, e.g. '1h_v3'")
    found = await _find(parts, principal, strategy, version, tenant, False, timeframe)
    row = found.row
    if row is None or row.training_id is None:
        raise Problem(409, f"model {strategy}/{found.name} is not in the registry", kind="conflict")
    await parts.store.append(
        [
            ev.ModelDeleted(
                training_id=row.training_id,
                tenant=row.tenant,
                source="api",
                strategy=row.strategy,
                timeframe=row.timeframe,
                version=row.version,
                reason=reason,
                requested_by=principal.name,
            )
        ]
    )
    if row.artifact is not None:
        await anyio.to_thread.run_sync(parts.artifacts.delete, row.artifact["key"])
    return Response(status_code=204)


# --- aliases --------------------------------------------------------------------------------


@router.put("/{strategy}/aliases/{alias}")
async def set_alias(
    strategy: str,
    alias: str,
    body: SetAlias,
    parts: PartsDep,
    principal: SubmitterDep,
) -> dict[str, Any]:
    """Point `alias` (e.g. `champion`) at one version of the caller's models; it moves there
    from wherever it was. `latest` is automatic and cannot be set."""
    _check_alias(alias)
    if parse_ref(body.version).version == LATEST:
        raise invalid("version", "name a version, e.g. 'v3'; latest moves by itself")
    found = await _find(parts, principal, strategy, body.version, None, False, body.timeframe)
    row = found.row
    if row is None or row.training_id is None:
        raise Problem(409, f"model {strategy}/{found.name} is not in the registry", kind="conflict")
    current = await _alias_row(parts, row.tenant, strategy, row.timeframe, alias)
    previous = current.version if current is not None else None
    if previous != row.version:
        await parts.store.append(
            [
                ev.ModelAliasSet(
                    training_id=row.training_id,
                    tenant=row.tenant,
                    source="api",
                    alias=alias,
                    strategy=strategy,
                    timeframe=row.timeframe,
                    version=row.version,
                    previous_version=previous,
                    requested_by=principal.name,
                )
            ]
        )
    return {
        "strategy": strategy,
        "alias": alias,
        "timeframe": row.timeframe,
        "version": row.version,
        "name": row.name,
        "previous_version": previous,
    }


@router.delete("/{strategy}/aliases/{alias}", status_code=204)
async def remove_alias(
    strategy: str,
    alias: str,
    parts: PartsDep,
    principal: SubmitterDep,
    timeframe: TimeframeQuery = None,
) -> Response:
    """Remove one of the caller's aliases."""
    _check_alias(alias)
    rows, _ = await _tenant_rows(parts, principal.tenant, strategy)
    tf = _pick_timeframe(strategy, alias, rows, timeframe)
    current = await _alias_row(parts, principal.tenant, strategy, tf, alias)
    named = current.version if current is not None else None
    target = next((r for r in rows if (r.timeframe, r.version) == (tf, named)), None)
    if named is None or target is None or target.training_id is None:
        raise Problem(404, f"alias {strategy}/{alias} is not set", kind="not-found")
    await parts.store.append(
        [
            ev.ModelAliasRemoved(
                training_id=target.training_id,
                tenant=principal.tenant,
                source="api",
                alias=alias,
                strategy=strategy,
                timeframe=tf,
                version=named,
                requested_by=principal.name,
            )
        ]
    )
    return Response(status_code=204)


def _check_alias(alias: str) -> None:
    if not ALIAS.match(alias) or alias == LATEST or _VERSION_LIKE.match(alias):
        raise invalid(
            "alias",
            "use lower-case letters, digits and '-', starting with a letter (e.g. champion); "
            "not 'latest' (automatic) nor a version like 'v3'",
        )


async def _alias_row(
    parts: PartsDep, tenant: str, strategy: str, timeframe: str, alias: str
) -> aliases_rm.AliasRow | None:
    found = await parts.store.find(
        aliases_rm.READ_MODEL,
        where={"tenant": tenant, "strategy": strategy, "timeframe": timeframe, "alias": alias},
    )
    return found[0] if found else None


# --- predictions ----------------------------------------------------------------------------


@router.post("/{strategy}/predict", response_model=PredictResponse)
async def predict_default(
    strategy: str,
    body: PredictWithRequest,
    parts: PartsDep,
    principal: PrincipalDep,
    tenant: TenantQuery = None,
) -> PredictResponse:
    """Signals of one of the caller's models on the latest bars of a symbol: the `version` or
    `alias` named in the body, or, with neither, `champion` when it is set, else `latest`;
    `resolved` says which version answered and why."""
    if body.version is not None and body.alias is not None:
        raise invalid("alias", "name a version or an alias, not both")
    note = ""
    if body.version is not None or body.alias is not None:
        text = body.version if body.version is not None else body.alias
        assert text is not None
        if body.alias is not None:
            _check_alias(body.alias)
        found = await _find(parts, principal, strategy, text, tenant, False, body.timeframe)
        via = None
    else:
        try:
            found = await _find(parts, principal, strategy, CHAMPION, tenant, False, body.timeframe)
            via, note = "champion (default)", f"no version or alias given: used {CHAMPION}"
        except Problem as miss:
            if miss.status != 404:
                raise
            found = await _find(parts, principal, strategy, LATEST, tenant, False, body.timeframe)
            via = "latest (default)"
            note = f"no version or alias given and no {CHAMPION} set: used latest"
        note = f"{note} ({found.name})"
    return await _predict_with(parts, strategy, found, body, found.resolved(note, via))


@router.post("/{strategy}/{version}/predict", response_model=PredictResponse)
async def predict(
    strategy: str,
    version: VersionSegment,
    body: PredictRequest,
    parts: PartsDep,
    principal: PrincipalDep,
    tenant: TenantQuery = None,
    local: LocalQuery = False,
    timeframe: TimeframeQuery = None,
) -> PredictResponse:
    """Signals of the model version (or alias) in the path on the latest bars of a symbol."""
    found = await _find(parts, principal, strategy, version, tenant, local, timeframe)
    return await _predict_with(parts, strategy, found, body, found.resolved())


async def _predict_with(
    parts: PartsDep, strategy: str, found: Found, body: PredictRequest, resolved: Resolved
) -> PredictResponse:
    settings = parts.settings
    if body.bars > settings.max_predict_bars:
        raise invalid("bars", f"at most {settings.max_predict_bars}")
    path = await _folder(parts, found)
    rows = await anyio.to_thread.run_sync(
        _predict, parts.model_cache, path, settings.data_dir, body
    )
    return PredictResponse(
        strategy=strategy,
        version=found.name,
        symbol=body.symbol,
        predictions=rows,
        resolved=resolved,
    )


# --- resolution -----------------------------------------------------------------------------


def parse_ref(version: str) -> VersionRef:
    ref = parse_version_ref(version)
    if ref is None:
        raise invalid("version", "use a model version like '1h_v3', 'v3' or 'latest', or an alias")
    return ref


def _parse(text: str) -> VersionRef | tuple[str | None, str]:
    """A version reference, or (timeframe or None, alias)."""
    ref = parse_version_ref(text)
    if ref is not None:
        return ref
    head, sep, tail = text.rpartition("_")
    if sep and ALIAS.match(tail) and head:
        return (head, tail)
    if ALIAS.match(text):
        return (None, text)
    raise invalid("version", "use a model version like '1h_v3', 'v3' or 'latest', or an alias")


def _not_found(strategy: str, version: str, available: list[ModelRow] | None = None) -> Problem:
    """The one 404 of a missing model. Admins (`available`) are told which versions exist."""
    detail = f"model {strategy}/{version} not found"
    if available is not None:
        numbers = ", ".join(str(r.version) for r in sorted(available, key=lambda r: r.version))
        detail += f"; available: {numbers or 'none'}"
    return Problem(404, detail, kind="not-found", title="Model not found")


def _checked_names(strategy: str, timeframe: str | None) -> None:
    """422 for a strategy or timeframe that is not a model folder name."""
    from libs.pipeline.storage.layout import ModelNameError, validate_name

    try:
        validate_name("strategy", strategy)
        if timeframe is not None:
            validate_name("timeframe", timeframe)
    except ModelNameError as exc:  # the timeframe key comes from the `version` path segment
        raise invalid("strategy" if exc.field == "strategy" else "version", str(exc)) from None


async def _tenant_rows(
    parts: PartsDep, tenant: str, strategy: str
) -> tuple[list[ModelRow], list[aliases_rm.AliasRow]]:
    where = {"tenant": tenant, "strategy": strategy}
    rows = await parts.store.find(models_rm.READ_MODEL, where=where)
    alias_rows = await parts.store.find(aliases_rm.READ_MODEL, where=where)
    return [r for r in rows if r.deleted_at is None], alias_rows


def _pick_timeframe(strategy: str, text: str, rows: list[ModelRow], *named: str | None) -> str:
    given = {t for t in named if t is not None}
    if len(given) > 1:
        raise invalid("timeframe", f"the timeframes named disagree: {', '.join(sorted(given))}")
    if given:
        return given.pop()
    timeframes = sorted({r.timeframe for r in rows})
    if not timeframes:
        raise _not_found(strategy, text)
    if len(timeframes) > 1:
        raise invalid(
            "version",
            f"{strategy!r} has models for several timeframes; pick one of {', '.join(timeframes)}",
        )
    return timeframes[0]


async def _find(
    parts: PartsDep,
    principal: Principal,
    strategy: str,
    text: str,
    tenant: str | None,
    local: bool,
    timeframe: str | None,
) -> Found:
    """The model version `text` names among the models the caller may read, or a 404/422."""
    parsed = _parse(text)
    ref_tf = parsed.timeframe if isinstance(parsed, VersionRef) else parsed[0]
    _checked_names(strategy, ref_tf)
    if timeframe is not None:
        _checked_names(strategy, timeframe)
    if principal.sees_all_tenants:
        if local and tenant is not None:
            raise invalid("local", "name a tenant or local=true, not both")
        if local:
            if not isinstance(parsed, VersionRef):
                raise invalid("version", "models trained outside the service have no aliases")
            return await _find_local(parts, strategy, parsed, timeframe)
        owner = tenant or principal.tenant
    else:
        if local or (tenant is not None and tenant != principal.tenant):
            raise _not_found(strategy, text)  # not the caller's: reads like a missing model
        owner = principal.tenant
    # Ownership from the read model only: what other tenants hold never shapes the answer.
    rows, alias_rows = await _tenant_rows(parts, owner, strategy)
    tf = _pick_timeframe(strategy, text, rows, ref_tf, timeframe)
    candidates = [r for r in rows if r.timeframe == tf]
    if not candidates:
        raise _not_found(strategy, text)
    via: Via
    alias = None
    row: ModelRow | None
    if isinstance(parsed, VersionRef) and parsed.version == LATEST:
        row, via = max(candidates, key=lambda r: r.version), "latest"
    elif isinstance(parsed, VersionRef):
        row = next((r for r in candidates if r.version == parsed.version), None)
        via = "version"
    else:
        alias = parsed[1]
        named = next(
            (a for a in alias_rows if a.timeframe == tf and a.alias == alias and a.version), None
        )
        row = next((r for r in candidates if named and r.version == named.version), None)
        via = "alias"
    if row is None:
        raise _not_found(strategy, text, candidates if principal.sees_all_tenants else None)
    local_path = None
    if row.artifact is None:  # saved before the artifact store: its folder in the tenant tree
        local_path = tenant_models_dir(parts.settings.models_dir, owner) / strategy / row.name
    return Found(owner, strategy, tf, row.version, row, local_path, via, alias)


async def _find_local(
    parts: PartsDep, strategy: str, ref: VersionRef, timeframe: str | None
) -> Found:
    """A model trained outside the service, from its folder (admins, `?local=true`)."""
    from libs.pipeline.storage.layout import parse_version_dir

    if ref.timeframe is None and timeframe is not None:
        ref = VersionRef(timeframe, ref.version)
    path = await anyio.to_thread.run_sync(resolve_ref, parts.settings.models_dir, strategy, ref)
    tf, number = parse_version_dir(path.name) or ("", 0)
    via: Via = "latest" if ref.version == LATEST else "version"
    return Found(None, strategy, tf, number, None, path, via)


def resolve(models_dir: Path, strategy: str, version: str) -> Path:
    """The folder a `{strategy}/{version}` path names among models trained outside the
    service, or a 404/422 problem."""
    return resolve_ref(models_dir, strategy, parse_ref(version))


def resolve_ref(models_dir: Path, strategy: str, ref: VersionRef) -> Path:
    from libs.pipeline.storage.catalog import ModelNotFoundError, resolve_model_path
    from libs.pipeline.storage.layout import ModelNameError

    _checked_names(strategy, ref.timeframe)
    try:
        path = resolve_model_path(models_dir, strategy, ref.timeframe, ref.version)
    except ModelNotFoundError as exc:
        raise Problem(404, str(exc), kind="not-found", title="Model not found") from None
    except ModelNameError as exc:  # a folder on disk with a timeframe that is not a safe name
        raise invalid("version", str(exc)) from None
    return path.resolve()


async def _folder(parts: PartsDep, found: Found) -> Path:
    """The model's files on this host: its artifact unpacked (verified) into the cache, or
    the folder of a model that has no artifact."""
    from libs.artifacts import ArtifactNotFound, CorruptArtifact
    from libs.pipeline.storage.bundle import unpack_model

    if found.local_path is not None:
        if not (found.local_path / "metadata.json").is_file():
            raise _not_found(found.strategy, found.name)
        return found.local_path
    assert found.row is not None and found.row.artifact is not None
    artifact = found.row.artifact
    cache = parts.settings.models_dir / CACHE_FOLDER
    try:
        return await anyio.to_thread.run_sync(
            unpack_model, parts.artifacts, artifact["key"], artifact["sha256"], cache
        )
    except (ArtifactNotFound, CorruptArtifact) as exc:
        raise Problem(
            503,
            f"model {found.strategy}/{found.name}: its artifact cannot be read ({exc})",
            kind="artifact-unavailable",
        ) from None


def _relative(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    return path.resolve().relative_to(root.resolve()).as_posix()


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
    names = loaded.class_names if result.values is None else ()
    values = result.values if result.values is not None else [None] * len(index)
    return [
        Prediction(
            timestamp=ts.to_pydatetime(),
            signal=label,
            probabilities={n: float(p) for n, p in zip(names, probs, strict=True)},
            predicted_return=None if value is None else float(value),
        )
        for ts, label, probs, value in zip(
            index, result.labels, result.probabilities, values, strict=True
        )
    ]
