"""Log lines for people and for machines: one setup for every ktrdr process.

    configure_logging(settings)               # KTRDR_LOG_LEVEL, KTRDR_LOG_FORMAT=text|json
    with log_context(training_id=..., attempt=..., trainer_id=..., tenant=...):
        log.info("...")                       # every line inside carries those fields

Plain text is the default (a terminal); KTRDR_LOG_FORMAT=json writes one JSON object per line
(`ts`, `level`, `logger`, `message`, the context fields that are set, `exc` with a traceback)
for a log collector. The context lives in contextvars, so it follows a request's or an
attempt's task, and a worker thread started with `contextvars.copy_context().run` (the trainer's
training thread). Setting up twice replaces the handler (never a second one: each line once).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from libs.settings import LogSettings

CONTEXT_FIELDS = ("training_id", "attempt", "trainer_id", "tenant")

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "ktrdr_log_context", default=MappingProxyType({})
)
_HANDLER_NAME = "ktrdr"
# Loggers whose INFO lines say nothing to an operator.
_QUIET = ("alembic.runtime.plugins",)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` (None values are left out) to every log line in this context."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name))
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        ]
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{head} [{' '.join(fields)}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                body[name] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def configure_logging(settings: LogSettings) -> None:
    """The root logger's one ktrdr handler (stderr), in the chosen format and level."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
