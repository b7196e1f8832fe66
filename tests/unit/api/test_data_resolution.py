"""The API validates a submission against exactly the data files the trainer reads: for every
shipped strategy (on the shipped data folder) and for a folder holding several finer
timeframes than the one requested."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.pipeline import dataset
from libs.pipeline.data import ohlcv
from libs.pipeline.data.files import DataSource, resolve_data_file
from libs.pipeline.data.synth import synth_ohlcv, write_ohlcv_csv
from libs.pipeline.pipeline import resolve_config
from libs.pipeline.request import TrainingRequest
from services.api import submission
from services.api.schemas import SubmitTraining
from services.api.settings import ApiSettings

REPO = Path(__file__).resolve().parents[3]
SHIPPED = sorted(p.stem for p in (REPO / "strategies").glob("*.yaml"))


def validated_by_api(
    monkeypatch: pytest.MonkeyPatch, body: SubmitTraining, settings: ApiSettings
) -> tuple[set[Path], submission.ResolvedSubmission]:
    """The files the submit-time validation checked (resolved, then their bounds read)."""
    checked: set[Path] = set()

    def spy(data_dir: Path, symbol: str, timeframe: str) -> DataSource | None:
        found = resolve_data_file(data_dir, symbol, timeframe)
        if found is not None:
            checked.add(found.path.resolve())
        return found

    with monkeypatch.context() as patch:
        patch.setattr(submission, "resolve_data_file", spy)
        resolved = submission.resolve_submission(body, settings)
    return checked, resolved


def read_by_trainer(
    monkeypatch: pytest.MonkeyPatch, resolved: submission.ResolvedSubmission, data_dir: Path
) -> set[Path]:
    """The files the trainer's data_loading phase reads for the accepted submission."""
    request = TrainingRequest(
        strategy=resolved.snapshot,
        data_dir=data_dir,
        models_dir=data_dir / "models",
        symbols=resolved.symbols,
        timeframes=resolved.timeframes,
        start_date=resolved.start_date,
        end_date=resolved.end_date,
        overrides=resolved.overrides,
    )
    read: set[Path] = set()
    real = ohlcv.read_ohlcv

    def spy(path: Path) -> object:
        read.add(Path(path).resolve())
        return real(path)

    with monkeypatch.context() as patch:
        patch.setattr(ohlcv, "read_ohlcv", spy)
        dataset.load_frames(resolve_config(request), data_dir, request.start_date, request.end_date)
    return read


def settings_for(tmp_path: Path, data_dir: Path) -> ApiSettings:
    return ApiSettings(
        strategies_dir=REPO / "strategies", data_dir=data_dir, models_dir=tmp_path / "models"
    )


@pytest.mark.parametrize("strategy", SHIPPED)
def test_shipped_strategies_validate_the_files_the_trainer_reads(
    strategy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = REPO / "data"
    body = SubmitTraining(strategy=strategy)
    checked, resolved = validated_by_api(monkeypatch, body, settings_for(tmp_path, data_dir))
    assert checked, "the API checked no data file"
    assert checked == read_by_trainer(monkeypatch, resolved, data_dir)


def test_several_finer_files_the_finest_is_validated_and_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    days = 60
    for timeframe, per_day in (("5m", 288), ("15m", 96), ("1h", 24)):
        bars = synth_ohlcv(days * per_day, timeframe, seed=len(timeframe))
        write_ohlcv_csv(bars, data_dir / f"SYNTH_{timeframe}.csv")
    body = SubmitTraining(
        strategy="neuro_mean_reversion",
        symbols=["SYNTH"],
        timeframes=["4h"],
        start_date="2020-01-20",
    )
    checked, resolved = validated_by_api(monkeypatch, body, settings_for(tmp_path, data_dir))
    finest = (data_dir / "SYNTH_5m.csv").resolve()
    assert checked == {finest}
    assert read_by_trainer(monkeypatch, resolved, data_dir) == {finest}
