"""Characters no database column can hold: NUL (Postgres text and JSONB refuse U+0000; SQLite
would take it, so the two backends would disagree) and unpaired UTF-16 surrogates (JSON may
escape them, UTF-8 cannot encode them). A request carrying one anywhere gets a 422 naming the
field, on every backend alike, before anything reaches SQL."""

from __future__ import annotations

import re
from typing import Any

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REASON = "contains a character that cannot be stored (NUL or an unpaired surrogate)"


def unstorable_at(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or mapping key) in `value` holding such a
    character, or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return where or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and UNSTORABLE.search(key):
                    return where or "body"
                stack.append((child, name))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None
