"""`context_data`: external series a strategy's indicators may read through `data_source`.

Nothing is downloaded: each entry names local files under the data folder
(libs/pipeline/data/context.py reads them, docs/strategy-format.md#context_data lists the
naming). Fields another provider uses are an error, like every field without an effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from libs.pipeline import names
from libs.pipeline.config.errors import ConfigIssue, SectionIssues, fields_without_effect
from libs.pipeline.config.sections import Section

# provider -> (required fields, optional fields)
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ib": (("symbol",), ("timeframe", "instrument_type")),
    "fred": (("series",), ("frequency",)),
    "cftc_cot": (("report",), ()),
}
SERIES_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class ContextSeriesConfig(Section):
    provider: Literal["ib", "fred", "cftc_cot"]
    symbol: str | None = Field(default=None, pattern=names.SYMBOL.pattern)
    timeframe: str | None = None  # ib: the bars' timeframe (default: each frame's own)
    instrument_type: str | None = None  # ib: descriptive (STK, FOREX, ...); files are by symbol
    series: list[str] | None = None  # fred: one or two series ids (two: also their spread)
    frequency: Literal["daily", "weekly", "monthly"] | None = None  # fred; default daily
    report: str | None = Field(default=None, pattern=SERIES_NAME)  # cftc_cot: e.g. EUR
    alignment: Literal["forward_fill"] = "forward_fill"

    @model_validator(mode="before")
    @classmethod
    def _fields_of_provider(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or data.get("provider") not in _FIELDS:
            return data
        provider = str(data["provider"])
        required, optional = _FIELDS[provider]
        issues = [
            ConfigIssue((key,), f"required with provider {provider}", "missing")
            for key in required
            if data.get(key) is None
        ]
        known = set(cls.model_fields) - {"alignment"}  # every provider's
        issues += fields_without_effect(data, known, "provider", provider, [*required, *optional])
        if issues:
            raise SectionIssues(issues)
        if provider == "fred" and data.get("frequency") is None:
            return {**data, "frequency": "daily"}
        return data

    @field_validator("series", mode="before")
    @classmethod
    def _one_or_two(cls, value: Any) -> Any:
        value = [value] if isinstance(value, str) else value
        if value is not None and (not isinstance(value, list) or not 1 <= len(value) <= 2):
            raise ValueError("one series id, or a list of two (their spread is a series too)")
        return value

    @field_validator("series")
    @classmethod
    def _ids(cls, value: list[str] | None) -> list[str] | None:
        import re

        bad = [s for s in value or [] if not re.match(SERIES_NAME, s)]
        if bad:
            raise ValueError(f"series ids are letters, digits, . _ -: {bad}")
        return value

    def names(self) -> list[str]:
        """The series this entry provides, as `data_source` names them."""
        if self.provider == "ib":
            return [str(self.symbol)]
        if self.provider == "fred":
            ids = self.series or []
            spread = [f"yield_spread_{ids[0]}_{ids[1]}"] if len(ids) == 2 else []
            return [f"fred_{s}" for s in ids] + spread
        return [f"cot_{self.report}_net", f"cot_{self.report}_net_pct"]

    def to_ktrdr(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)
