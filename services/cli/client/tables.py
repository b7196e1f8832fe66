"""Rich tables for `ktrdr status` and `ktrdr list`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.table import Table

from services.cli.client.ids import short_id

STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "cancelling": "yellow",
    "running": "cyan",
    "queued": "white",
}


def training_table(view: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in _rows(view):
        if value not in (None, "", [], {}):
            table.add_row(label, str(value))
    return table


def trainings_table(
    items: list[dict[str, Any]], *, wide: bool = False, now: datetime | None = None
) -> Table:
    """`ktrdr list`: fits 80 columns with short ids (any unique prefix works as an id), status
    words whole; `wide` adds the full id, the best validation loss and the model."""
    now = now or datetime.now(UTC)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("training", no_wrap=True, min_width=36 if wide else 8)
    table.add_column("status", no_wrap=True, min_width=10)  # "cancelling" stays whole
    table.add_column("strategy", overflow="ellipsis", no_wrap=True, max_width=16)
    table.add_column("epoch", no_wrap=True, justify="right", min_width=7)
    table.add_column("prog", no_wrap=True, justify="right", min_width=4)
    table.add_column("duration", no_wrap=True, justify="right", min_width=8)
    if wide:
        table.add_column("best val", no_wrap=True, justify="right")
        table.add_column("model", no_wrap=True)
    table.add_column("requested", no_wrap=True, min_width=11)
    for v in items:
        row = [
            v["training_id"] if wide else short_id(v["training_id"]),
            _status(v["status"]),
            v.get("strategy") or "—",
            _of(v.get("epoch"), v.get("total_epochs")) or "—",
            _percent(v.get("progress")) or "—",
            duration(v, now),
        ]
        if wide:
            best = (v.get("best_metrics") or {}).get("val_loss")
            row += [f"{best:.4f}" if isinstance(best, int | float) else "—", _model(v) or "—"]
        row.append(_when(v.get("requested_at")))
        table.add_row(*row)
    return table


def duration(v: dict[str, Any], now: datetime) -> str:
    """How long it ran (or has been running); "—" before it started."""
    started = _parse(v.get("started_at"))
    if started is None:
        return "—"
    seconds = int(((_parse(v.get("finished_at")) or now) - started).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _when(value: Any) -> str:
    moment = _parse(value)
    return moment.strftime("%m-%d %H:%M") if moment else "—"


def _model(v: dict[str, Any]) -> str | None:
    model = v.get("model") or {}
    return f"{model['strategy']}/{model['timeframe']}_v{model['version']}" if model else None


def _rows(v: dict[str, Any]) -> list[tuple[str, Any]]:
    error = v.get("error") or {}
    latest = v.get("latest_metrics") or {}
    return [
        ("training", v["training_id"]),
        ("status", _status(v["status"])),
        ("strategy", v.get("strategy")),
        ("data", " ".join([*(v.get("symbols") or []), *(v.get("timeframes") or [])])),
        ("phase", v.get("phase")),
        ("epoch", _of(v.get("epoch"), v.get("total_epochs"))),
        ("batch", _of(v.get("batch"), v.get("total_batches"))),
        ("progress", _percent(v.get("progress"))),
        ("eta", f"{v['eta_s']:.0f}s" if v.get("eta_s") is not None else None),
        ("metrics", _metrics(latest)),
        ("best", _metrics(v.get("best_metrics") or {})),
        ("attempt", v.get("attempt") or None),
        ("trainer", v.get("trainer_id")),
        ("device", (v.get("device") or {}).get("name")),
        ("model", _model(v)),
        ("error", f"{error.get('error_type')}: {error.get('message')}" if error else None),
        ("requested", v.get("requested_at")),
        ("started", v.get("started_at")),
        ("finished", v.get("finished_at")),
        ("position", v.get("position")),
    ]


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _of(value: Any, total: Any) -> str:
    if value is None:
        return ""
    return f"{value}/{total}" if total else str(value)


def _percent(progress: Any) -> str:
    return f"{100 * progress:.0f}%" if isinstance(progress, int | float) else ""


def _metrics(metrics: dict[str, Any]) -> str:
    return "  ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
    )
