"""A data problem found while validating a submit is placed by its kind (never by its text):
too few bars in a requested date range is the dates' fault, a broken file is the data's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from libs.pipeline.data.synth import synth_ohlcv, write_ohlcv_csv
from services.api.errors import Problem
from services.api.schemas import SubmitTraining
from services.api.settings import ApiSettings
from services.api.submission import resolve_submission
from tests.unit.api.conftest import FIXTURES

START = "2021-01-04"


def write_bars(data_dir: Path, bars: int, *, duplicate_at: int | None = None) -> None:
    frame = synth_ohlcv(bars, "1h", seed=1, start=START)
    if duplicate_at is not None:  # the same bar twice, well inside any requested range
        frame = pd.concat([frame.iloc[: duplicate_at + 1], frame.iloc[duplicate_at:]])
    write_ohlcv_csv(frame, data_dir / "SYN_1h.csv")


def fields_of(tmp_path: Path, **body: str) -> list[str]:
    settings = ApiSettings(
        strategies_dir=FIXTURES, data_dir=tmp_path / "data", models_dir=tmp_path / "models"
    )
    request = SubmitTraining(strategy="tiny_rsi", symbols=["SYN"], **body)
    with pytest.raises(Problem) as info:
        resolve_submission(request, settings)
    assert info.value.status == 422
    return [error.field for error in info.value.errors]


def test_a_broken_file_is_the_data_even_when_dates_were_given(tmp_path: Path) -> None:
    # The loader's message ("rows must be unique and ascending") talks about rows; the problem
    # is still the file, not the requested range.
    write_bars(tmp_path / "data", 24 * 20, duplicate_at=24 * 10)
    assert fields_of(tmp_path, start_date="2021-01-06", end_date="2021-01-18") == ["data"]


def test_too_few_bars_in_the_requested_range_names_the_dates(tmp_path: Path) -> None:
    write_bars(tmp_path / "data", 24 * 20)
    last_day = "2021-01-23"  # 20 days from START: the last day holds the last bars only
    assert fields_of(tmp_path, start_date=f"{last_day}T20:00") == ["start_date", "end_date"]


def test_too_few_bars_without_dates_is_the_data(tmp_path: Path) -> None:
    write_bars(tmp_path / "data", 25)
    assert fields_of(tmp_path) == ["data"]
