"""Values the pipeline produces (numpy scalars and arrays, tensors, dates, paths, tuples, YAML
extras) as plain JSON: the one conversion behind strategy snapshots, saved model files and the
metrics trainers publish."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any


def jsonable(value: Any, *, strict: bool = False) -> Any:
    """A deep copy of `value` made of dict/list/str/int/float/bool/None only.

    - floats are kept bit-for-bit (JSON round-trips a Python float exactly); NaN and infinities
      become None, since JSON has no spelling for them;
    - mapping keys become strings; tuples, sets and lists become lists;
    - dates, datetimes and times become ISO 8601 text; paths their text; bytes UTF-8 text;
    - numpy scalars and arrays and torch tensors become their Python values (`tolist`/`item`);
    - anything else becomes its `str()`, or with `strict` is refused with a TypeError (a saved
      model file must not hold text where a value was meant).
    """
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, strict=strict) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, strict=strict) for v in value]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, torch tensors
    if callable(tolist):
        return jsonable(tolist(), strict=strict)
    item = getattr(value, "item", None)
    if callable(item):
        return jsonable(item(), strict=strict)
    if strict:
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")
    return str(value)
