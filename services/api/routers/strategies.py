"""/api/v1/strategies: what can be trained, and a validator for YAML before submitting it."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter

from libs.pipeline.config.limits import limit_issues
from services.api.deps import PrincipalDep, SettingsDep
from services.api.errors import invalid_many
from services.api.schemas import (
    StrategyDetail,
    StrategyList,
    StrategySummary,
    ValidateStrategy,
    ValidationResult,
)
from services.api.strategy_files import (
    issue_at,
    load_config,
    parse_yaml,
    strategy_names,
    strategy_path,
)

router = APIRouter(prefix="/strategies", tags=["strategies"])


@router.get("", response_model=StrategyList)
async def list_strategies(settings: SettingsDep, _: PrincipalDep) -> StrategyList:
    """The strategies in the strategies folder, with their symbols and timeframes; a file that
    does not load is listed with its error."""
    return await anyio.to_thread.run_sync(_list, settings.strategies_dir)


@router.get("/{name}", response_model=StrategyDetail)
async def get_strategy(name: str, settings: SettingsDep, _: PrincipalDep) -> StrategyDetail:
    """One strategy, resolved: its symbols, timeframes, unused sections and full config."""

    def load() -> StrategyDetail:
        cfg = load_config(strategy_path(settings.strategies_dir, name, field="name"), field="name")
        return _detail(name, cfg)

    return await anyio.to_thread.run_sync(load)


@router.post("/validate", response_model=ValidationResult)
async def validate_strategy(
    body: ValidateStrategy, settings: SettingsDep, _: PrincipalDep
) -> ValidationResult:
    """Validate strategy YAML without submitting it: the resolved config and warnings, or a
    422 naming each problem's field."""

    def load() -> Any:
        document = parse_yaml(
            body.strategy_yaml, field="strategy_yaml", max_bytes=settings.max_strategy_yaml_bytes
        )
        cfg = load_config(document, field="strategy_yaml")
        if too_much := limit_issues(cfg.snapshot(), settings):
            raise invalid_many(issue_at("strategy_yaml", issue) for issue in too_much)
        return cfg

    cfg = await anyio.to_thread.run_sync(load)
    return ValidationResult(
        ok=True,
        name=cfg.name,
        warnings=[f"section {s!r} is not used by training" for s in cfg.unused_sections],
        config=cfg.snapshot(),
    )


def _list(strategies_dir: Any) -> StrategyList:
    items = []
    for name in strategy_names(strategies_dir):
        try:
            cfg = load_config(strategy_path(strategies_dir, name), field="strategy")
        except Exception as exc:  # noqa: BLE001 - one broken file must not hide the others
            detail = getattr(exc, "detail", None) or str(exc)
            items.append(StrategySummary(name=name, error=detail))
            continue
        items.append(
            StrategySummary(
                name=name,
                description=_description(cfg),
                symbols=list(cfg.symbols),
                timeframes=list(cfg.timeframes),
            )
        )
    return StrategyList(items=items)


def _detail(name: str, cfg: Any) -> StrategyDetail:
    return StrategyDetail(
        name=name,
        description=_description(cfg),
        symbols=list(cfg.symbols),
        timeframes=list(cfg.timeframes),
        unused_sections=list(cfg.unused_sections),
        config=cfg.snapshot(),
    )


def _description(cfg: Any) -> str | None:
    description = getattr(cfg, "description", None)
    return str(description) if description is not None else None
