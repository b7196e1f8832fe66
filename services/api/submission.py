"""Validate a training submission the way a trainer would, before anything is appended.

Everything a trainer would otherwise fail on minutes later is checked here and answered with a
422 naming the field: strategy schema and overrides (the pipeline's own `load_strategy` /
`apply_overrides`; override types strictly, and the hyper-parameter limits an admin set,
libs/pipeline/config/limits.py), dates, data files for every symbol and timeframe (a coarser
one may be resampled from a finer file), a date range that overlaps the data, and finally the
pipeline's `load_frames` itself (too few rows, NaNs, unsorted timestamps). Synchronous: call
it in a worker thread.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from libs.pipeline import dates
from libs.pipeline.config.errors import ConfigIssue, StrategyConfigError, format_path
from libs.pipeline.config.limits import HyperParameterLimits, limit_issues, override_type_issues
from libs.pipeline.config.overrides import override_path
from libs.pipeline.data.files import resolve_data_file
from libs.pipeline.data.ohlcv import DataError
from services.api.data_files import DataBounds, data_bounds
from services.api.errors import FieldError, invalid, invalid_many
from services.api.schemas import SubmitTraining
from services.api.settings import ApiSettings
from services.api.strategy_files import load_config, parse_yaml, strategy_path

# Where the symbols and timeframes sit in the snapshot that overrides are applied to.
_SYMBOLS_LOC = ("training_data", "symbols")
_TIMEFRAMES_LOC = ("training_data", "timeframes")


@dataclass(frozen=True)
class ResolvedSubmission:
    strategy_name: str
    snapshot: dict[str, Any]  # the strategy as loaded (overrides are carried separately)
    symbols: list[str]  # after overrides
    timeframes: list[str]
    start_date: str | None
    end_date: str | None
    overrides: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def resolve_submission(body: SubmitTraining, settings: ApiSettings) -> ResolvedSubmission:
    base = _load_base_config(body, settings)
    resolved = _apply_overrides(base, body, settings)
    start, end = _parse_dates(body)
    warnings = [
        f"section {name!r} is not used by training"
        for name in getattr(resolved, "unused_sections", [])
    ]
    warnings += _check_data(resolved, body, settings.data_dir, start, end)
    return ResolvedSubmission(
        strategy_name=resolved.name,
        snapshot=base.snapshot(),
        symbols=list(resolved.symbols),
        timeframes=list(resolved.timeframes),
        start_date=body.start_date,
        end_date=body.end_date,
        overrides=dict(body.overrides),
        warnings=warnings,
    )


def _load_base_config(body: SubmitTraining, settings: ApiSettings) -> Any:
    if (body.strategy is None) == (body.strategy_yaml is None):
        reason = "give exactly one of 'strategy' (a name) and 'strategy_yaml' (YAML text)"
        raise invalid_many([FieldError("strategy", reason), FieldError("strategy_yaml", reason)])
    if body.strategy is not None:
        return load_config(strategy_path(settings.strategies_dir, body.strategy), field="strategy")
    document = parse_yaml(
        body.strategy_yaml or "", field="strategy_yaml", max_bytes=settings.max_strategy_yaml_bytes
    )
    return load_config(document, field="strategy_yaml")


def _apply_overrides(base: Any, body: SubmitTraining, limits: HyperParameterLimits) -> Any:
    from libs.pipeline.config.strategy import apply_overrides

    try:
        if wrong_types := override_type_issues(body.overrides):
            raise StrategyConfigError(wrong_types)
        resolved = apply_overrides(
            base, symbols=body.symbols, timeframes=body.timeframes, overrides=body.overrides or None
        )
        if too_much := limit_issues(resolved.snapshot(), limits):
            raise StrategyConfigError(too_much)
    except StrategyConfigError as exc:
        raise invalid_many(override_error(issue, body) for issue in exc.issues) from None
    return resolved


def override_error(issue: ConfigIssue, body: SubmitTraining) -> FieldError:
    """Point an apply_overrides problem at the request field that caused it: the pipeline
    locates it in the strategy (("model", "training", "epochs")), the client sent
    "overrides.epochs"."""
    loc, message = issue.loc, issue.message
    if loc[:1] == ("overrides",):
        return FieldError(format_path(loc), message)
    for key in body.overrides:
        target = override_path(key)
        if target is not None and loc[: len(target)] == target:
            return FieldError(format_path(loc[len(target) :], prefix=f"overrides.{key}"), message)
    if body.symbols and loc[: len(_SYMBOLS_LOC)] == _SYMBOLS_LOC:
        return FieldError("symbols", message)
    if body.timeframes and loc[: len(_TIMEFRAMES_LOC)] == _TIMEFRAMES_LOC:
        return FieldError("timeframes", message)
    return FieldError("overrides" if body.overrides else "strategy", str(issue))


def _parse_dates(body: SubmitTraining) -> tuple[datetime | None, datetime | None]:
    start = _parse_date("start_date", body.start_date, end=False)
    end = _parse_date("end_date", body.end_date, end=True)
    if start and end and start > end:
        raise invalid("end_date", f"must not be before start_date ({body.start_date})")
    return start, end


def _parse_date(name: str, value: str | None, *, end: bool) -> datetime | None:
    """The bound the trainer will use (a bare end date covers that whole day)."""
    try:
        return dates.parse_bound(value, end=end)
    except ValueError:
        raise invalid(
            name,
            f"not an ISO 8601 date or datetime: {value!r} (e.g. {dates.EXAMPLES})",
        ) from None


def _check_data(
    cfg: Any, body: SubmitTraining, data_dir: Path, start: datetime | None, end: datetime | None
) -> list[str]:
    symbols, timeframes = list(cfg.symbols), list(cfg.timeframes)
    missing: list[FieldError] = []
    bounds: dict[str, DataBounds] = {}
    for i, symbol in enumerate(symbols):
        for j, timeframe in enumerate(timeframes):
            found = resolve_data_file(data_dir, symbol, timeframe)
            if found is None:
                where = (
                    f"symbols[{i}]"
                    if body.symbols
                    else f"timeframes[{j}]"
                    if body.timeframes
                    else "data"
                )
                missing.append(
                    FieldError(
                        where,
                        f"no data for {symbol} {timeframe}: {symbol}_{timeframe}.csv "
                        "is missing from the data folder and no finer timeframe can be "
                        "resampled",
                    )
                )
            elif symbol not in bounds:
                # Unreadable timestamps: load_frames below names the problem.
                with contextlib.suppress(OSError, ValueError):
                    bounds[symbol] = data_bounds(found.path)
    if missing:
        raise invalid_many(missing)
    warnings = _check_range(bounds, start, end)
    _load_frames(cfg, data_dir, body)
    return warnings


def _check_range(
    bounds: dict[str, DataBounds], start: datetime | None, end: datetime | None
) -> list[str]:
    warnings = []
    for symbol, (first, last) in bounds.items():
        if start and start > last:
            raise invalid("start_date", f"after the last {symbol} bar ({last.isoformat()})")
        if end and end < first:
            raise invalid("end_date", f"before the first {symbol} bar ({first.isoformat()})")
        if start and start < first:
            warnings.append(f"start_date is before the first {symbol} bar ({first.isoformat()})")
        if end and end > last:
            warnings.append(f"end_date is after the last {symbol} bar ({last.isoformat()})")
    return warnings


def _load_frames(cfg: Any, data_dir: Path, body: SubmitTraining) -> None:
    """The pipeline's data loader is the final word (row counts, NaNs, ordering)."""
    from libs.pipeline.dataset import load_frames

    try:
        load_frames(cfg, data_dir, body.start_date, body.end_date)
    except DataError as exc:
        raise invalid_many(data_error(exc, body, data_dir)) from None


def data_error(
    exc: DataError, body: SubmitTraining, data_dir: Path | None = None
) -> list[FieldError]:
    """The request fields a data problem concerns, chosen by its kind: too few bars in a
    requested date range is the dates' doing; anything else is the data's. File names are
    shown relative to the data folder: clients have no business knowing server paths."""
    message = str(exc) if data_dir is None else without_server_paths(str(exc), data_dir)
    if exc.kind == "too_few_bars" and (body.start_date or body.end_date):
        return [FieldError("start_date", message), FieldError("end_date", message)]
    return [FieldError("data", message)]


def without_server_paths(message: str, folder: Path) -> str:
    for root in dict.fromkeys((str(folder.resolve()), str(folder))):
        message = message.replace(root + "/", "").replace(root, "the data folder")
    return message
