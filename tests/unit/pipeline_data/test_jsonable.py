"""The one JSON conversion of pipeline values: what each kind of value becomes."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from libs.pipeline.jsonable import jsonable


def test_numbers_keep_their_value_and_non_finite_floats_become_null() -> None:
    value = {
        "f": 0.1 + 0.2,
        "np_float": np.float32(0.5),
        "np_int": np.int64(7),
        "np_bool": np.bool_(True),
        "nan": math.nan,
        "inf": np.float64("inf"),
        "array": np.array([[1, 2], [3, 4]]),
        "tensor": torch.tensor([0.25, 0.75]),
    }
    out = jsonable(value)
    assert out == {
        "f": 0.1 + 0.2,  # bit-for-bit
        "np_float": 0.5,
        "np_int": 7,
        "np_bool": True,
        "nan": None,
        "inf": None,
        "array": [[1, 2], [3, 4]],
        "tensor": [0.25, 0.75],
    }
    assert type(out["np_int"]) is int and type(out["np_bool"]) is bool
    json.dumps(out, allow_nan=False)


def test_dates_are_iso_8601_and_containers_become_plain() -> None:
    stamp = pd.Timestamp("2021-01-04 05:00", tz="UTC")
    value = {
        1: (dt.date(2021, 1, 4), dt.datetime(2021, 1, 4, 5, 30), dt.time(12, 0)),
        "stamp": stamp,
        "np_datetime": np.datetime64("2021-01-04T05:00:00"),
        "path": Path("models") / "x",
        "set": {3},
        "bytes": b"abc",
    }
    assert jsonable(value) == {
        "1": ["2021-01-04", "2021-01-04T05:30:00", "12:00:00"],
        "stamp": "2021-01-04T05:00:00+00:00",
        "np_datetime": "2021-01-04T05:00:00",
        "path": str(Path("models") / "x"),
        "set": [3],
        "bytes": "abc",
    }


def test_other_objects_become_their_text() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    assert jsonable([Odd()]) == ["odd"]
    with pytest.raises(TypeError, match="Odd"):
        jsonable({"x": [Odd()]}, strict=True)
