"""The indicator catalog is one table: each entry's TA-Lib call must read exactly the
parameters the entry declares and give exactly the outputs it declares, so a new indicator is
one entry (plus a test of its values) and a mismatch fails here, not in a training."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
import talib

from libs.pipeline.config.sections import IndicatorConfig
from libs.pipeline.data.synth import synth_ohlcv
from libs.pipeline.indicators import catalog
from libs.pipeline.indicators.compute import compute_indicator

BARS = synth_ohlcv(300, "1h", seed=7)


class ReadParams(Mapping[str, Any]):
    """The default parameters, remembering which ones the compute function reads; a name the
    entry does not declare is a KeyError."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values, self.read = values, set[str]()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@pytest.mark.parametrize("name", sorted(catalog.SPECS))
def test_compute_reads_the_declared_params_and_gives_the_declared_outputs(name: str) -> None:
    spec = catalog.SPECS[name]
    params, issues = catalog.resolve_params(spec, {})
    assert issues == []
    reading = ReadParams(params)
    outputs = spec.compute(talib, BARS, reading)
    assert reading.read == set(spec.params), "params declared but unused, or used but undeclared"
    assert len(outputs) == spec.output_count
    for values in outputs:
        assert np.asarray(values).shape == (len(BARS),)
        assert np.isfinite(np.asarray(values, dtype=np.float64)[-50:]).all()


@pytest.mark.parametrize("name", sorted(catalog.SPECS))
def test_every_entry_loads_from_a_strategy_and_names_its_columns(name: str) -> None:
    indicator = IndicatorConfig.model_validate({"name": name, "feature_id": f"{name}_x"})
    columns = compute_indicator(indicator, BARS)
    outputs = catalog.SPECS[name].outputs
    assert list(columns) == [f"{name}_x", *(f"{name}_x.{o}" for o in outputs[1:])]


def test_aliases_point_at_entries() -> None:
    assert set(catalog.ALIASES.values()) <= set(catalog.SPECS)
    assert set(catalog.KNOWN_NAMES) == set(catalog.SPECS) | set(catalog.ALIASES)
