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
DATA_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# A fuzzy input's indicator: feature_id or feature_id.output.
INDICATOR_REF = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_]+)?$")

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IndicatorConfig(Section):
    """One indicator. In YAML its parameters sit beside `name` (v1/v2) or `type` (v3, where the
    mapping key is the feature_id); here in `params`. `data_source` computes it on another
    series: another symbol's bars or a context_data series (aligned without look-ahead)."""

    name: str  # canonical (`bollinger_bands` is stored as `bbands`)
    feature_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    data_source: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_ktrdr(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError("an indicator must be a mapping like {name: rsi, period: 14}")
        rest = dict(data)
        if "type" in rest and "name" in rest:
            raise SectionIssues.at("type", "type (v3) and name (v1/v2) both given; give one")
        where = "type" if "type" in rest else "name"
        raw_name = rest.pop(where, None)
        if not isinstance(raw_name, str) or not raw_name.strip():
            raise SectionIssues.at(
                where, "required (the indicator, e.g. rsi, macd, sma)", "missing"
            )
        data_source = rest.pop("data_source", None)
        if data_source is not None and (
            not isinstance(data_source, str) or not DATA_SOURCE.match(data_source)
        ):
            message = (
                f"{data_source!r} must name a symbol or a context_data series "
                "(letters, digits, . _ -)"
            )
            raise SectionIssues.at("data_source", message)
        feature_id = rest.pop("feature_id", None) or raw_name.strip()
        nested = rest.pop("params", None) or {}
        if not isinstance(nested, Mapping):
            raise SectionIssues.at("params", "must be a mapping of parameter names to values")
        given = {**nested, **rest}
        name = catalog.canonical_name(raw_name)
        if name is None:
            known = ", ".join(catalog.KNOWN_NAMES)
            message = f"unknown indicator {raw_name!r}; valid indicators: {known}"
            raise SectionIssues.at(where, message, "reference")
        params, issues = catalog.resolve_params(catalog.SPECS[name], given)
        if not isinstance(feature_id, str) or not FEATURE_ID.match(feature_id):
            message = (
                f"{feature_id!r} must start with a letter and hold only letters, digits, _ and - "
                "(a '.' is reserved for outputs like macd_12_26_9.signal)"
            )
            issues.append(ConfigIssue(("feature_id",), message))
        if issues:
            raise SectionIssues(issues)
        out = {"name": name, "feature_id": feature_id, "params": params}
        return {**out, "data_source": data_source} if data_source is not None else out

    @property
    def spec(self) -> catalog.IndicatorSpec:
        return catalog.SPECS[self.name]

    def to_ktrdr(self) -> dict[str, Any]:
        out = {"name": self.name, "feature_id": self.feature_id, **self.params}
        return {**out, "data_source": self.data_source} if self.data_source else out

    def to_v3(self) -> dict[str, Any]:
        out = {"type": self.name, **self.params}
        return {**out, "data_source": self.data_source} if self.data_source else out


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
    """The fuzzy sets of one input, by set name. v1/v2 key the input by the indicator it reads
    (a feature_id or feature_id.output); v3 names it freely and says which in `indicator`."""

    indicator: str | None = None
    input_transform: InputTransform | None = None
    sets: dict[str, MembershipConfig]

    @model_validator(mode="before")
    @classmethod
    def _from_ktrdr(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError("must be a mapping of set names to [a, b, c] or {type, parameters}")
        own = {"indicator", "input_transform", "sets"}
        if set(data) <= own and isinstance(data.get("sets"), Mapping):
            return data  # already in this model's own shape
        indicator = data.get("indicator")
        if indicator is not None and (
            not isinstance(indicator, str) or not INDICATOR_REF.match(indicator)
        ):
            message = f"{indicator!r} must be an indicator id, or id.output (macd_12_26_9.signal)"
            raise SectionIssues.at("indicator", message)
        sets = {key: value for key, value in data.items() if key not in own - {"sets"}}
        out = {"input_transform": data.get("input_transform"), "sets": sets}
        return {**out, "indicator": indicator} if indicator is not None else out

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
        if self.indicator is not None:
            out["indicator"] = self.indicator
        if self.input_transform is not None:
            out["input_transform"] = self.input_transform.model_dump()
        out.update({name: m.model_dump() for name, m in self.sets.items()})
        return out


Normalization = Literal["minmax", "zscore", "none"]


class NnInputConfig(Section):
    """One entry of v3 `nn_inputs`: a fuzzy set's memberships or an indicator's raw values, on
    all timeframes or the ones listed, normalised with statistics of the train split only."""

    fuzzy_set: str | None = None
    raw_indicator: str | None = None
    timeframes: Literal["all"] | list[str] = "all"
    # None: the default of the kind -- none for memberships (already in [0, 1]), zscore for
    # raw indicator values (MACD in price units, RSI in 0..100).
    normalization: Normalization | None = None

    @model_validator(mode="after")
    def _one_source(self) -> NnInputConfig:
        if (self.fuzzy_set is None) == (self.raw_indicator is None):
            raise ValueError("give exactly one of fuzzy_set (an id) or raw_indicator (an id)")
        if isinstance(self.timeframes, list) and not self.timeframes:
            raise SectionIssues.at("timeframes", "empty; give `all` or timeframes to use")
        return self

    @property
    def method(self) -> Normalization:
        if self.normalization is not None:
            return self.normalization
        return "none" if self.fuzzy_set is not None else "zscore"

    def to_ktrdr(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ArchitectureConfig(Section):
    """MLP: hidden_layers, activation, dropout. LSTM/GRU: sequence_length (bars per window,
    the current bar and the ones before it), hidden_size, num_layers, dropout (between
    recurrent layers and before the head). Fields of the other family are an error."""

    hidden_layers: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [64, 32], min_length=1
    )
    activation: Literal["relu", "tanh", "sigmoid", "leaky_relu", "gelu"] = "relu"
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    sequence_length: int | None = Field(default=None, ge=1, le=1000)
    hidden_size: int | None = Field(default=None, ge=1)
    num_layers: int | None = Field(default=None, ge=1, le=16)


class FeaturesConfig(Section):
    lookback_periods: int = Field(default=0, ge=0, le=500)
    scale_features: bool = True
    scaling_method: Literal["standard", "minmax"] = "standard"

    @model_validator(mode="after")
    def _scaling_used(self) -> FeaturesConfig:
        if not self.scale_features and "scaling_method" in self.model_fields_set:
            raise SectionIssues.at("scaling_method", "no effect when scale_features is false")
        return self
