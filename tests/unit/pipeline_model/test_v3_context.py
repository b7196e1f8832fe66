"""data_source series and context_data series introduce no look-ahead: changing another
symbol's bars, a FRED series or a COT report from some time on changes no feature of a row
decided before that data was known -- and does change rows decided after it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from libs.pipeline import dataset
from libs.pipeline.config.strategy import load_strategy
from libs.pipeline.data.ohlcv import read_ohlcv
from libs.pipeline.data.synth import write_ohlcv_csv
from tests.unit.pipeline_model.test_v3_corpus import CORPUS, write_context

STRATEGY = CORPUS / "data_source_context.yaml"


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clean")
    write_context(folder)
    return folder


def features(folder: Path) -> pd.DataFrame:
    cfg = load_strategy(STRATEGY)
    frames = dataset.load_frames(cfg, folder, None, None)
    indicators = dataset.compute_indicators(cfg, frames, folder)
    fuzzy = dataset.compute_fuzzy(cfg, frames, indicators)
    return dataset.build_features(cfg, fuzzy)["SYN"]


def columns_of(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    return frame[[c for c in frame.columns if c.startswith(prefix)]]


def assert_no_look_ahead(before: pd.DataFrame, after: pd.DataFrame, known_from: pd.Timestamp):
    """Rows decided (at their close, t + 1h) before `known_from` are equal; some later differ."""
    decided = before.index + pd.Timedelta(hours=1)
    early = decided < known_from
    assert early.sum() > 50 and (~early).sum() > 50
    pd.testing.assert_frame_equal(before[early], after[early])
    late_a, late_b = before[~early].to_numpy(), after[~early].to_numpy()
    both = ~np.isnan(late_a) & ~np.isnan(late_b)
    assert (late_a[both] != late_b[both]).any()


def test_another_symbols_future_bars_change_no_earlier_row(clean, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(clean, changed)
    bars = read_ohlcv(clean / "GBPSYN_1h.csv")
    cut = bars.index[1200]
    later = bars.index > cut
    bars.loc[later, ["open", "high", "low", "close"]] *= np.linspace(0.8, 1.3, later.sum())[:, None]
    write_ohlcv_csv(bars, changed / "GBPSYN_1h.csv")
    # A GBPSYN bar opened after the cut is known from its close, cut + 2h at the earliest.
    before, after = columns_of(features(clean), "gbp_"), columns_of(features(changed), "gbp_")
    assert_no_look_ahead(before, after, cut + pd.Timedelta(hours=2))


def test_a_fred_value_reaches_rows_only_after_its_release(clean, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(clean, changed)
    path = changed / "context" / "fred_DGS2.csv"
    fred = pd.read_csv(path)
    day = pd.Timestamp("2020-02-10", tz="UTC")
    later = pd.to_datetime(fred["date"], utc=True) >= day
    fred.loc[later, "value"] += np.linspace(0.5, 2.0, later.sum())
    fred.to_csv(path, index=False)
    # A daily value dated `day` is known one day later (no available_at column).
    for prefix in ("carry_direction", "dgs2_ema"):
        before, after = columns_of(features(clean), prefix), columns_of(features(changed), prefix)
        assert_no_look_ahead(before, after, day + pd.Timedelta(days=1))


def test_a_cot_report_reaches_rows_only_after_its_friday_release(clean, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(clean, changed)
    path = changed / "context" / "cot_EUR.csv"
    cot = pd.read_csv(path)
    tuesday = pd.Timestamp("2020-02-11", tz="UTC")
    later = pd.to_datetime(cot["date"], utc=True) >= tuesday
    cot.loc[later, "net"] = -cot.loc[later, "net"] * 3 - 1e6
    cot.to_csv(path, index=False)
    before = columns_of(features(clean), "positioning")
    after = columns_of(features(changed), "positioning")
    assert_no_look_ahead(before, after, tuesday + pd.Timedelta(days=3, hours=21))


def test_available_at_overrides_the_default_release_lag(clean, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(clean, changed)
    path = changed / "context" / "fred_DGS2.csv"
    fred = pd.read_csv(path)
    dates = pd.to_datetime(fred["date"], utc=True)
    fred["available_at"] = (dates + pd.Timedelta(days=5)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    fred.to_csv(path, index=False)
    lagged, default = features(changed)["dgs2_ema"], features(clean)["dgs2_ema"]
    # Known 5 days after its date instead of 1: a row sees what a row 4 days earlier saw.
    shifted = default.reindex(lagged.index - pd.Timedelta(days=4)).to_numpy()
    present = ~np.isnan(shifted)
    assert present.sum() > 500
    np.testing.assert_array_equal(lagged.to_numpy()[present], shifted[present])
    assert not np.array_equal(lagged.to_numpy()[present], default.to_numpy()[present])
