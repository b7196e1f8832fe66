"""The pydantic sections of a strategy (KTRDR format), each frozen and closed to unknown fields.

Every field here has an effect on training; fields that only matter for one choice (the
scheduler's `step_size` for `type: step`, `scaling_method` when features are scaled) are an
error when given for another choice, so a researcher never believes a setting is in use when
it is not. Defaults are filled in, so a config's snapshot is the full resolved strategy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from libs.pipeline.config.errors import ConfigIssue, SectionIssues
from libs.pipeline.indicators import catalog

FEATURE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IndicatorConfig(Section):
    """One indicator. In YAML its parameters sit beside `name` (KTRDR style); here in `params`."""

    name: str  # canonical (`bollinger_bands` is stored as `bbands`)
    feature_id: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_ktrdr(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError("an indicator must be a mapping like {name: rsi, period: 14}")
        rest = dict(data)
        raw_name = rest.pop("name", None)
        if not isinstance(raw_name, str) or not raw_name.strip():
            raise SectionIssues.at(
                "name", "required (the indicator, e.g. rsi, macd, sma)", "missing"
            )
        feature_id = rest.pop("feature_id", None) or raw_name.strip()
        nested = rest.pop("params", None) or {}
        if not isinstance(nested, Mapping):
            raise SectionIssues.at("params", "must be a mapping of parameter names to values")
        given = {**nested, **rest}
        name = catalog.canonical_name(raw_name)
        if name is None:
            known = ", ".join(catalog.KNOWN_NAMES)
            message = f"unknown indicator {raw_name!r}; valid indicators: {known}"
            raise SectionIssues.at("name", message, "reference")
        params, issues = catalog.resolve_params(catalog.SPECS[name], given)
        if not isinstance(feature_id, str) or not FEATURE_ID.match(feature_id):
            message = (
                f"{feature_id!r} must start with a letter and hold only letters, digits, _ and - "
                "(a '.' is reserved for outputs like macd_12_26_9.signal)"
            )
            issues.append(ConfigIssue(("feature_id",), message))
        if issues:
            raise SectionIssues(issues)
        return {"name": name, "feature_id": feature_id, "params": params}

    @property
    def spec(self) -> catalog.IndicatorSpec:
        return catalog.SPECS[self.name]

    def to_ktrdr(self) -> dict[str, Any]:
        return {"name": self.name, "feature_id": self.feature_id, **self.params}


_ARITY = {"triangular": 3, "trapezoidal": 4, "gaussian": 2}


class MembershipConfig(Section):
    """A fuzzy set: `[a, b, c]` shorthand (triangular) or `{type, parameters}`."""

    type: Literal["triangular", "trapezoidal", "gaussian"]
    parameters: list[FiniteFloat]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            if len(data) != 3:
                raise ValueError(
                    f"the [a, b, c] shorthand is triangular and takes 3 numbers, got {len(data)}; "
                    "write {type: trapezoidal, parameters: [a, b, c, d]} for other shapes"
                )
            return {"type": "triangular", "parameters": list(data)}
        if not isinstance(data, Mapping):
            raise ValueError(f"a fuzzy set must be [a, b, c] or {{type, parameters}}, got {data!r}")
        return data

    @model_validator(mode="after")
    def _shape(self) -> MembershipConfig:
        p = self.parameters
        if len(p) != _ARITY[self.type]:
            raise ValueError(f"{self.type} takes {_ARITY[self.type]} parameters, got {len(p)}")
        if self.type == "gaussian":
            if p[1] <= 0:
                raise ValueError(f"gaussian [mean, sigma] needs sigma > 0, got {p[1]:g}")
        elif any(x > y for x, y in zip(p, p[1:], strict=False)) or p[0] == p[-1]:
            letters = "a <= b <= c" if self.type == "triangular" else "a <= b <= c <= d"
            raise ValueError(
                f"{self.type} needs {letters} with a < {'c' if len(p) == 3 else 'd'}, got {p}"
            )
        return self


class InputTransform(Section):
    """Fuzzify `reference / indicator` (e.g. close / sma_20) instead of the indicator itself."""

    type: Literal["price_ratio"]
    reference: Literal["open", "high", "low", "close"] = "close"


class FuzzyInputConfig(Section):
    """The fuzzy sets of one input (a feature_id or feature_id.output), by set name."""

    input_transform: InputTransform | None = None
    sets: dict[str, MembershipConfig]

    @model_validator(mode="before")
    @classmethod
    def _from_ktrdr(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError("must be a mapping of set names to [a, b, c] or {type, parameters}")
        if set(data) <= {"input_transform", "sets"} and isinstance(data.get("sets"), Mapping):
            return data  # already in this model's own shape
        sets = {key: value for key, value in data.items() if key != "input_transform"}
        return {"input_transform": data.get("input_transform"), "sets": sets}

    @field_validator("sets")
    @classmethod
    def _names(cls, sets: dict[str, MembershipConfig]) -> dict[str, MembershipConfig]:
        if not sets:
            raise ValueError("no fuzzy sets given")
        bad = [name for name in sets if not SET_NAME.match(name)]
        if bad:
            raise ValueError(f"set names must be letters, digits, _ or -: {bad}")
        return sets

    def to_ktrdr(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.input_transform is not None:
            out["input_transform"] = self.input_transform.model_dump()
        out.update({name: m.model_dump() for name, m in self.sets.items()})
        return out


class ArchitectureConfig(Section):
    hidden_layers: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [64, 32], min_length=1
    )
    activation: Literal["relu", "tanh", "sigmoid", "leaky_relu", "gelu"] = "relu"
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)


class FeaturesConfig(Section):
    lookback_periods: int = Field(default=0, ge=0, le=500)
    scale_features: bool = True
    scaling_method: Literal["standard", "minmax"] = "standard"

    @model_validator(mode="after")
    def _scaling_used(self) -> FeaturesConfig:
        if not self.scale_features and "scaling_method" in self.model_fields_set:
            raise SectionIssues.at("scaling_method", "no effect when scale_features is false")
        return self
