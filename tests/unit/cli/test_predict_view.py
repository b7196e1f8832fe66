"""`ktrdr models predict` shows what the model predicts: a regime model's own four classes and a
regression model's predicted return, not three BUY/HOLD/SELL columns that would not fit them."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from libs.pipeline.pipeline import train_strategy
from libs.pipeline.request import TrainingRequest
from libs.pipeline.storage.load import load_model
from services.cli.app import app

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO / "tests" / "strategies_v3"


def train(name: str, models_dir: Path) -> Path:
    strategy = yaml.safe_load((CORPUS / name).read_text())
    request = TrainingRequest(strategy=strategy, data_dir=REPO / "data", models_dir=models_dir)
    return train_strategy(request).model.path


def predict(strategy: str, models_dir: Path) -> list[str]:
    result = CliRunner().invoke(
        app,
        ["models", "predict", strategy, "--bars", "3", "--models-dir", str(models_dir)],
        env={"COLUMNS": "200", "KTRDR_DATA_DIR": str(REPO / "data")},
    )
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def cells(row: str) -> list[str]:
    return row.replace("│", " ").split()


def test_a_regime_model_shows_its_own_classes(tmp_path):
    path = train("regime_classifier.yaml", tmp_path)
    classes = load_model(path).class_names
    assert len(classes) == 4
    lines = predict("v3_regime_classifier", tmp_path)
    header = next(line for line in lines if "timestamp" in line)
    assert all(f"P({c})" in header for c in classes), header
    assert "P(BUY)" not in header
    rows = [line for line in lines if line.lstrip()[:2] == "20"]
    assert len(rows) == 3
    for row in rows:  # four probabilities per bar that sum to one
        probabilities = [float(cell) for cell in cells(row)[-4:]]
        assert abs(sum(probabilities) - 1) < 0.01, row


def test_a_regression_model_shows_its_predicted_return(tmp_path):
    train("gru_regression.yaml", tmp_path)
    lines = predict("v3_gru_regression", tmp_path)
    header = next(line for line in lines if "timestamp" in line)
    assert "predicted return" in header and "P(" not in header, header
    rows = [line for line in lines if line.lstrip()[:2] == "20"]
    assert len(rows) == 3
    for row in rows:  # the signal is the sign of the predicted return
        signal, value = cells(row)[-2], float(cells(row)[-1])
        assert signal == ("BUY" if value > 0 else "SELL" if value < 0 else "HOLD"), row
