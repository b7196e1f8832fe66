"""Rich tables for `ktrdr status` and `ktrdr list`."""

from __future__ import annotations

from typing import Any

from rich.table import Column, Table

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


def trainings_table(items: list[dict[str, Any]]) -> Table:
    table = Table("strategy", "status", "phase", "epoch", "progress", "requested")
    # The id must survive a narrow terminal whole: it is what every other command takes.
    table.columns.insert(0, Column("training", no_wrap=True, min_width=36))
    for v in items:
        table.add_row(
            v["training_id"],
            v.get("strategy") or "",
            _status(v["status"]),
            v.get("phase") or "",
            _of(v.get("epoch"), v.get("total_epochs")),
            _percent(v.get("progress")),
            (v.get("requested_at") or "")[:19],
        )
    return table


def _rows(v: dict[str, Any]) -> list[tuple[str, Any]]:
    model = v.get("model") or {}
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
        (
            "model",
            f"{model['strategy']}/{model['timeframe']}_v{model['version']}" if model else None,
        ),
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
