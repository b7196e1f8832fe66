"""A model reference in the path (`/models/{strategy}/{version}`) is parsed by the storage
layout's one parser, and a bad name is placed by the part of the reference it came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.api.errors import Problem
from services.api.routers.models import resolve


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    for name in ("1h_v1", "1h_v2"):
        folder = tmp_path / "strat" / name
        folder.mkdir(parents=True)
        (folder / "metadata.json").write_text("{}")
    return tmp_path


@pytest.mark.parametrize("version", ["1h_v2", "1h_latest", "v2", "2", "latest"])
def test_every_spelling_of_a_version_finds_the_folder(models_dir: Path, version: str) -> None:
    assert resolve(models_dir, "strat", version) == (models_dir / "strat" / "1h_v2").resolve()


@pytest.mark.parametrize(
    ("strategy", "version", "field"),
    [
        ("x..y", "latest", "strategy"),
        ("strat", "x..y_v1", "version"),  # the timeframe key comes from the version segment
        ("strat", "1h_vx", "version"),
    ],
)
def test_bad_names_are_placed_by_where_they_came_from(
    models_dir: Path, strategy: str, version: str, field: str
) -> None:
    with pytest.raises(Problem) as info:
        resolve(models_dir, strategy, version)
    assert info.value.status == 422
    assert [error.field for error in info.value.errors] == [field]


def test_a_missing_version_is_not_found(models_dir: Path) -> None:
    with pytest.raises(Problem) as info:
        resolve(models_dir, "strat", "1h_v9")
    assert info.value.status == 404 and "available: 1, 2" in info.value.detail
