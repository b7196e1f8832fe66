"""StrategyConfigError and the translation of pydantic errors into messages researchers can act
on: the field's path in the YAML, what is wrong, and what would be valid."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError


class StrategyConfigError(ValueError):
    """A strategy that cannot be trained. `problems` holds one line per problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = f"invalid strategy: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            text = f"invalid strategy ({len(self.problems)} problems):\n{lines}"
        super().__init__(text)


def format_path(loc: Iterable[str | int]) -> str:
    """('indicators', 2, 'period') -> 'indicators[2].period'; the internal `sets` level of a
    fuzzy input is hidden, since in YAML the sets sit directly under the input."""
    parts = list(loc)
    if len(parts) > 2 and parts[0] == "fuzzy_sets" and parts[2] == "sets":
        del parts[2]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _unwrap(tp: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the one interesting type."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(options) != 1:
                return tp
            tp = options[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _field_type(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The section class found by following `loc` from `root` (None when it leads elsewhere)."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if _is_model(tp) and isinstance(part, str):
            tp = _field_type(tp, part)
        elif origin is list and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if _is_model(tp) else None


def field_index(root: type[BaseModel]) -> dict[str, list[str]]:
    """Every field name of the schema -> the paths where it is valid (for 'did you mean')."""
    index: dict[str, list[str]] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name in _field_names(model):
            path = f"{prefix}.{name}" if prefix else name
            index.setdefault(name, []).append(path)
            inner = _unwrap(_field_type(model, name))
            if typing.get_origin(inner) in (list, dict):
                inner = _unwrap(typing.get_args(inner)[-1])
                path += "[i]" if typing.get_origin(_field_type(model, name)) is list else ".<key>"
            if _is_model(inner):
                walk(inner, path)

    walk(root, "")
    return index


_SUBFIELD = re.compile(r"^[A-Za-z_]\w*: ")


def _with_path(path: str, message: str) -> str:
    # Messages raised by our validators start with the sub-field they are about ("period: ...").
    if _SUBFIELD.match(message):
        return f"{path}.{message}" if path else message
    return f"{path}: {message}" if path else message


def describe(
    error: ValidationError, root: type[BaseModel], extra_valid: Sequence[str] = ()
) -> list[str]:
    """One readable line per pydantic error, naming the field path and the valid choices."""
    hints = field_index(root)
    problems: list[str] = []
    for err in error.errors(include_url=False):
        loc, kind = err["loc"], err["type"]
        path = format_path(loc)
        if kind == "extra_forbidden":
            owner = model_at(root, loc[:-1])
            valid = _field_names(owner) if owner else []
            if len(loc) == 1:
                valid = [*valid, *extra_valid]
            line = f"{path}: unknown field; valid fields: {', '.join(valid)}"
            elsewhere = [p for p in hints.get(str(loc[-1]), []) if p != path]
            if elsewhere:
                line += f" (did you mean {' or '.join(elsewhere)}?)"
            problems.append(line)
        elif kind == "missing":
            problems.append(f"{path}: required field missing")
        elif kind == "value_error":
            for message in str(err["ctx"]["error"]).split("\n"):
                problems.append(_with_path(path, message))
        elif kind in ("literal_error", "enum"):
            expected = err.get("ctx", {}).get("expected", "")
            problems.append(f"{path}: {err['input']!r} is not valid; valid values: {expected}")
        else:
            problems.append(f"{path}: {err['msg']} (got {err['input']!r})")
    return problems
