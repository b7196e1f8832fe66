"""Metrics from the pipeline may hold numpy scalars/arrays, tuples or Paths; events hold JSON."""

from __future__ import annotations

import math
from pathlib import PurePath
from typing import Any


def jsonable(value: Any) -> Any:
    """A deep copy of `value` made of dict/list/str/int/float/bool/None only.

    Floats are kept bit-for-bit (JSON round-trips a Python float exactly), so metrics in a
    Completed event equal the pipeline's. NaN/inf become None: JSON has no spelling for them.
    """
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, torch tensors
    if callable(tolist):
        return jsonable(tolist())
    item = getattr(value, "item", None)
    if callable(item):
        return jsonable(item())
    return str(value)
