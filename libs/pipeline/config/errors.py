"""Structured strategy errors: every problem carries its location in the strategy document as
data (`ConfigIssue.loc`), so callers (the API, the CLI) can place it without parsing text; and
the translation of pydantic errors into messages researchers can act on: what is wrong and what
would be valid."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]

IssueKind = Literal[
    "unknown_field",  # a key the section does not have
    "missing",  # a required field is absent
    "invalid",  # a value of the wrong type, range or choice
    "reference",  # a name that refers to nothing (a fuzzy input without its indicator, ...)
    "unknown_override",  # an override key that names no setting
    "unreadable",  # the document itself: no file, not YAML, not a mapping
]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem. `loc` is its path in the strategy document as written in YAML (section
    keys and list indices; `()` = the document as a whole); for an unknown override it is
    `("overrides", key)`. `message` says what is wrong, without the location."""

    loc: Loc
    message: str
    kind: IssueKind = "invalid"

    def under(self, *prefix: str | int) -> ConfigIssue:
        return replace(self, loc=(*prefix, *self.loc))

    def __str__(self) -> str:
        path = format_path(self.loc)
        return f"{path}: {self.message}" if path else self.message


class StrategyConfigError(ValueError):
    """A strategy that cannot be trained. `issues` holds every problem found."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        problems = self.problems
        if len(problems) == 1:
            text = f"invalid strategy: {problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in problems)
            text = f"invalid strategy ({len(problems)} problems):\n{lines}"
        super().__init__(text)

    @property
    def problems(self) -> list[str]:
        """One readable line per issue: `path: message`."""
        return [str(issue) for issue in self.issues]


class SectionIssues(ValueError):
    """Raised by a section's validator: problems located relative to that section (e.g. at
    `("period",)` of an indicator). `describe` puts them under the section's own location."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))

    @classmethod
    def at(cls, field: str, message: str, kind: IssueKind = "invalid") -> SectionIssues:
        return cls([ConfigIssue((field,), message, kind)])


def fields_without_effect(
    data: Mapping[str, Any],
    known: Iterable[str],
    discriminator: str,
    choice: str,
    uses: Sequence[str],
) -> list[ConfigIssue]:
    """One issue for each field set in `data` (a section's input, one of its `known` fields)
    that the `choice` of its `discriminator` (a type, a source, a provider) does not use."""
    reason = f"no effect with {discriminator} {choice}; {choice} uses: "
    reason += ", ".join(uses) or "no other fields"
    checked = set(known) - {discriminator, *uses}
    return [
        ConfigIssue((key,), reason)
        for key, value in data.items()
        if key in checked and value is not None
    ]


def format_path(loc: Iterable[str | int], *, prefix: str = "") -> str:
    """('indicators', 2, 'period') -> 'indicators[2].period', appended to `prefix` when given
    (`prefix="strategy"` -> 'strategy.indicators[2].period')."""
    text = prefix
    for part in loc:
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


# Internal levels that do not exist in the YAML: their fields sit directly in the parent
# (fuzzy_sets.<id>.sets.<set> is written fuzzy_sets.<id>.<set>; training.hyper.epochs is
# written training.epochs).
INLINE_FIELDS: tuple[str, ...] = ("hyper",)


def _field_names(model: type[BaseModel]) -> list[str]:
    names = []
    for name, info in model.model_fields.items():
        inner = _unwrap(info.annotation)
        if name in INLINE_FIELDS and _is_model(inner):
            names += _field_names(inner)
        else:
            names.append(info.alias or name)
    return names


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


def yaml_loc(loc: Iterable[str | int]) -> Loc:
    """A pydantic location as written in YAML: the internal `sets` level of a fuzzy input is
    dropped, since in YAML the sets sit directly under the input."""
    parts = list(loc)
    if len(parts) > 2 and parts[0] == "fuzzy_sets" and parts[2] == "sets":
        del parts[2]
    if len(parts) > 1 and parts[0] == "training" and parts[1] in INLINE_FIELDS:
        del parts[1]
    return tuple(parts)


# Fields KTRDR files write that nothing here consumes: why, and what to use instead.
NOT_CONSUMED: dict[str, str] = {
    "output_activation": (
        "nothing consumes it: the head is linear (class logits, or one return for "
        "regression); decisions.output_format chooses the head"
    ),
}


def describe(
    error: ValidationError, root: type[BaseModel], extra_valid: Sequence[str] = ()
) -> list[ConfigIssue]:
    """One issue per pydantic error, located in the YAML and naming the valid choices."""
    hints = field_index(root)
    issues: list[ConfigIssue] = []
    for err in error.errors(include_url=False):
        raw_loc, kind = err["loc"], err["type"]
        loc = yaml_loc(raw_loc)
        path = format_path(loc)
        if kind == "extra_forbidden":
            owner_loc = [p for p in raw_loc[:-1] if p not in INLINE_FIELDS]
            owner = model_at(root, owner_loc)
            valid = _field_names(owner) if owner else []
            if len(raw_loc) == 1:
                valid = [*valid, *extra_valid]
            message = f"unknown field; valid fields: {', '.join(valid)}"
            if str(raw_loc[-1]) in NOT_CONSUMED:
                message = f"{NOT_CONSUMED[str(raw_loc[-1])]} (remove it)"
            elsewhere = [p for p in hints.get(str(raw_loc[-1]), []) if p != path]
            if elsewhere:
                message += f" (did you mean {' or '.join(elsewhere)}?)"
            issues.append(ConfigIssue(loc, message, "unknown_field"))
        elif kind == "missing":
            issues.append(ConfigIssue(loc, "required field missing", "missing"))
        elif kind == "value_error":
            cause = err.get("ctx", {}).get("error")
            if isinstance(cause, SectionIssues):
                issues += [issue.under(*loc) for issue in cause.issues]
            else:
                issues += [ConfigIssue(loc, line) for line in str(cause).split("\n")]
        elif kind in ("literal_error", "enum"):
            expected = err.get("ctx", {}).get("expected", "")
            message = f"{err['input']!r} is not valid; valid values: {expected}"
            issues.append(ConfigIssue(loc, message))
        else:
            issues.append(ConfigIssue(loc, f"{err['msg']} (got {err['input']!r})"))
    return issues
