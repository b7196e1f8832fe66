"""Synthetic bars and `ktrdr data synth`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from libs.pipeline.data.ohlcv import read_ohlcv
from libs.pipeline.data.synth import synth_ohlcv
from services.cli.app import app


def test_bars_are_consistent_and_seeded():
    bars = synth_ohlcv(5000, "4h", seed=11, start="2022-03-01")
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["open"].iloc[1:].to_numpy() == bars["close"].iloc[:-1].to_numpy()).all()
    assert (np.diff(bars.index.asi8) == pd.Timedelta(hours=4).value).all()
    assert bars.index[0] == pd.Timestamp("2022-03-01", tz="UTC")
    pd.testing.assert_frame_equal(bars, synth_ohlcv(5000, "4h", seed=11, start="2022-03-01"))
    assert not bars.equals(synth_ohlcv(5000, "4h", seed=12, start="2022-03-01"))


def test_refuses_nonsense():
    with pytest.raises(ValueError, match="timeframe"):
        synth_ohlcv(10, "3h")
    with pytest.raises(ValueError, match="bars"):
        synth_ohlcv(0)


def test_cli_writes_a_loadable_file(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "data",
            "synth",
            "ZZZ",
            "--timeframe",
            "15m",
            "--bars",
            "1000",
            "--seed",
            "4",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    bars = read_ohlcv(tmp_path / "ZZZ_15m.csv")
    expected = synth_ohlcv(1000, "15m", seed=4)
    assert len(bars) == 1000 and bars.index.equals(expected.index)
    np.testing.assert_allclose(bars.to_numpy(), expected.to_numpy(), rtol=1e-6)


def test_cli_uses_ktrdr_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KTRDR_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["data", "synth", "YYY", "--bars", "50"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "YYY_1h.csv").is_file()
    listing = CliRunner().invoke(app, ["data", "list"])
    assert "YYY_1h.csv" in listing.output and "50" in listing.output


def test_cli_rejects_a_symbol_that_is_not_a_file_name(tmp_path):
    result = CliRunner().invoke(app, ["data", "synth", "../evil", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert not list(tmp_path.iterdir())
