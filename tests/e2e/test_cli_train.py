"""`ktrdr train` and `ktrdr models` as real subprocesses, the way a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = ROOT / "strategies" / "neuro_mean_reversion.yaml"
MODEL_FILES = {"model.pt", "config.json", "metrics.json", "features.json", "metadata.json"}


def ktrdr(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("ktrdr")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from services.cli.app import main; main()", *args]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KTRDR_DATA_DIR": str(ROOT / "data")}
    env.pop("COLUMNS", None)  # 80 columns: the error line must still be one line
    return subprocess.run(
        ktrdr(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def model_dirs(models_dir: Path) -> list[Path]:
    return sorted(p for p in models_dir.glob("*/*_v*") if p.is_dir())


def test_train_then_list_then_predict(tmp_path):
    models = tmp_path / "models"
    trained = run("train", str(STRATEGY), "--epochs", "2", "--models-dir", str(models))
    assert trained.returncode == 0, trained.stderr + trained.stdout
    [folder] = model_dirs(models)
    assert {p.name for p in folder.iterdir()} == MODEL_FILES
    assert "test accuracy" in trained.stdout and str(folder) in trained.stdout
    assert "evidence of skill at 95 %: " in trained.stdout  # the verdict line
    saved = json.loads((folder / "metrics.json").read_text())["test"]
    assert saved["verdict"][:40] in trained.stdout
    assert "[11/11] saving" in trained.stdout  # every phase was shown

    # A service's tenant tree in the same folder is not a strategy of `ktrdr models list`.
    shutil.copytree(folder, models / "tenants" / "acme" / "neuro_mean_reversion" / folder.name)
    listed = run("models", "list", "--models-dir", str(models))
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "neuro_mean_reversion" in line)
    assert folder.name in row and "latest" in row
    assert "tenants" not in listed.stdout and "acme" not in listed.stdout

    predicted = run(
        "models", "predict", "neuro_mean_reversion", "--bars", "4", "--models-dir", str(models)
    )
    assert predicted.returncode == 0, predicted.stderr
    signals = [line for line in predicted.stdout.splitlines() if line.lstrip().startswith("2017-")]
    assert len(signals) == 4
    assert all(any(s in line for s in ("BUY", "HOLD", "SELL")) for line in signals)


def test_ctrl_c_stops_cleanly_with_130_and_saves_nothing(tmp_path):
    models = tmp_path / "models"
    env = {**os.environ, "KTRDR_DATA_DIR": str(ROOT / "data")}
    proc = subprocess.Popen(
        ktrdr("train", str(STRATEGY), "--epochs", "500", "--models-dir", str(models)),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = []
        for line in proc.stdout:  # wait until training has really started
            seen.append(line)
            if "training:" in line:
                break
        assert any("training:" in line for line in seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "nothing was saved" in err and "Traceback" not in err
    assert model_dirs(models) == []


def test_a_bad_strategy_is_one_red_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(STRATEGY.read_text().replace("batch_size: 64", "batch_sise: 64"))
    result = run("train", str(bad), "--models-dir", str(tmp_path / "models"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "batch_sise" in line and "batch_size" in line  # names the field and the valid ones

    missing = run("train", "no_such_strategy", "--models-dir", str(tmp_path / "models"))
    assert missing.returncode == 2 and "neuro_mean_reversion" in missing.stderr  # lists known
    assert not (tmp_path / "models").exists()
