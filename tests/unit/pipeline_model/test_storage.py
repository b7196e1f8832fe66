import datetime as dt
import hashlib
import json
import multiprocessing
import os
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from libs.pipeline.storage import layout
from libs.pipeline.storage.catalog import ModelNotFoundError, list_models, resolve_model_path
from libs.pipeline.storage.load import load_model
from libs.pipeline.storage.save import MODEL_FILES, save_model
from tests.unit.pipeline_model.conftest import new_model


def save(models_dir, model=None, strategy="strat", timeframe="1h", accuracy=0.5):
    model = model or new_model()
    return save_model(
        models_dir,
        strategy=strategy,
        timeframe=timeframe,
        model=model,
        config={"name": strategy},
        metrics={"test": {"accuracy": accuracy}},
        features={"feature_names": [f"f{i}" for i in range(6)], "lookback_periods": 0},
        metadata={
            "input_size": 6,
            "architecture": {"hidden_layers": [8, 4], "activation": "relu", "dropout": 0.1},
            "symbols": ["X"],
        },
    )


def test_save_writes_five_files_and_reports_hash_and_size(tmp_path):
    saved = save(tmp_path)
    assert saved.path == tmp_path / "strat" / "1h_v1"
    assert sorted(os.listdir(saved.path)) == sorted(MODEL_FILES)
    assert saved.sha256 == hashlib.sha256((saved.path / "model.pt").read_bytes()).hexdigest()
    assert saved.bytes == sum(p.stat().st_size for p in saved.path.iterdir())
    meta = json.loads((saved.path / "metadata.json").read_text())
    assert meta["torch_version"] == torch.__version__ and meta["symbols"] == ["X"]
    assert [p.name for p in (tmp_path / "strat").iterdir() if p.name.startswith(".tmp")] == []
    assert saved.path.stat().st_mode & 0o755 == 0o755  # readable by the API's user too


def test_versions_increase_and_latest_follows(tmp_path):
    assert [save(tmp_path).version for _ in range(3)] == [1, 2, 3]
    assert resolve_model_path(tmp_path, "strat") == tmp_path / "strat" / "1h_v3"
    assert resolve_model_path(tmp_path, "strat", "1h", 2) == tmp_path / "strat" / "1h_v2"
    assert os.readlink(tmp_path / "strat" / "1h_latest") == "1h_v3"


def test_round_trip_gives_identical_predictions(tmp_path):
    model = new_model(seed=3)
    model.eval()
    X = np.random.default_rng(0).standard_normal((50, 6)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(X)), 1).numpy()
    loaded = load_model(save(tmp_path, model).path)
    assert not loaded.model.training
    prediction = loaded.predict(X)
    np.testing.assert_array_equal(prediction.probabilities, expected)
    assert prediction.classes.tolist() == expected.argmax(1).tolist()
    assert set(prediction.labels) <= {"BUY", "HOLD", "SELL"}
    with pytest.raises(ValueError, match=r"expected shape \(rows, 6\)"):
        loaded.predict(X[:, :5])


def test_a_version_taken_after_our_scan_makes_us_take_the_next(tmp_path, monkeypatch):
    other = save(tmp_path)  # v1 exists, but our saver's first scan will not see it
    real = layout.existing_versions
    scans = []

    def stale_first_scan(*args):
        scans.append(args)
        return [] if len(scans) == 1 else real(*args)

    monkeypatch.setattr(layout, "existing_versions", stale_first_scan)
    mine = save(tmp_path)
    assert mine.version == 2
    assert len(scans) >= 2  # the rename onto v1 failed and the saver looked again
    assert (other.path / "model.pt").is_file()  # the other saver's model is untouched


def test_concurrent_threads_get_distinct_versions(tmp_path):
    barrier = threading.Barrier(8)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=30)
            results.append(save(tmp_path).version)
        except Exception as e:  # surfaced by the assert below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(results) == list(range(1, 9))
    assert resolve_model_path(tmp_path, "strat").name == "1h_v8"


def _process_saver(models_dir, barrier, queue):
    barrier.wait(timeout=30)
    queue.put(save(models_dir).version)


def test_concurrent_processes_get_distinct_versions(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_process_saver, args=(tmp_path, barrier, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    versions = sorted(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert versions == [1, 2, 3, 4]
    assert len(list_models(tmp_path)) == 4
    assert resolve_model_path(tmp_path, "strat").name == "1h_v4"


def test_latest_pointer_never_points_back(tmp_path):
    save(tmp_path)
    save(tmp_path)
    link = tmp_path / "strat" / "1h_latest"
    link.unlink()
    os.symlink("1h_v1", link)  # as if the slower saver of v1 had finished last
    layout.update_latest_pointer(tmp_path / "strat", "1h")
    assert os.readlink(link) == "1h_v2"


def test_pointer_file_when_symlinks_are_unavailable(tmp_path, monkeypatch):
    def no_symlinks(*a, **k):
        raise OSError("symlinks not supported")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    save(tmp_path)
    save(tmp_path)
    pointer = tmp_path / "strat" / "1h_latest"
    assert not pointer.is_symlink() and pointer.read_text().strip() == "1h_v2"
    assert resolve_model_path(tmp_path, "strat").name == "1h_v2"


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x..y", "/abs"])
def test_names_cannot_escape_the_models_dir(tmp_path, name):
    models_dir = tmp_path / "models"
    with pytest.raises(layout.ModelNameError, match="strategy") as info:
        save(models_dir, strategy=name)
    assert info.value.field == "strategy"
    with pytest.raises(layout.ModelNameError, match="timeframe") as info:
        save(models_dir, timeframe=name)
    assert info.value.field == "timeframe"
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["models"])
    assert list_models(models_dir) == []


def test_tenant_trees_have_their_own_versions_and_local_listing_leaves_them_out(tmp_path):
    local = save(tmp_path)  # `ktrdr train`: {models_dir}/{strategy}
    acme = save(layout.tenant_models_dir(tmp_path, "acme"))
    globex = save(layout.tenant_models_dir(tmp_path, "globex"))
    assert (local.version, acme.version, globex.version) == (1, 1, 1)
    assert acme.path == tmp_path / "tenants" / "acme" / "strat" / "1h_v1"
    assert [(i.strategy, i.path) for i in list_models(tmp_path)] == [("strat", local.path)]
    assert [t for t, _ in layout.tenant_dirs(tmp_path)] == ["acme", "globex"]
    assert [i.path for i in list_models(tmp_path / "tenants" / "globex")] == [globex.path]


def test_tenants_is_no_strategy_and_tenant_names_cannot_escape(tmp_path):
    from libs.pipeline import names

    # `tenants/` beside the strategy folders holds the tenants' trees: no strategy takes it.
    with pytest.raises(layout.ModelNameError, match="not 'tenants'") as info:
        save(tmp_path, strategy="tenants")
    assert info.value.field == "strategy"
    assert not names.STRATEGY.matches("tenants") and names.STRATEGY.matches("tenants2")
    for bad in ("../x", "Acme", "a/b", "", ".x"):
        with pytest.raises(layout.ModelNameError) as info:
            layout.tenant_models_dir(tmp_path, bad)
        assert info.value.field == "tenant"
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_leaves_nothing_behind(tmp_path):
    with pytest.raises(TypeError):
        save_model(
            tmp_path,
            strategy="s",
            timeframe="1h",
            model=new_model(),
            config={"bad": object()},
            metrics={},
            features={},
            metadata={},
        )
    assert list((tmp_path / "s").iterdir()) == []


def test_list_models_skips_incomplete_folders_and_reads_accuracy(tmp_path):
    save(tmp_path, accuracy=0.61)
    save(tmp_path, strategy="other", timeframe="1d")
    (tmp_path / "strat" / ".tmp-1h-abc").mkdir()
    (tmp_path / "strat" / "1h_v9").mkdir()  # no metadata.json: a crashed copy, not a model
    infos = list_models(tmp_path)
    assert [(i.strategy, i.timeframe, i.version) for i in infos] == [
        ("other", "1d", 1),
        ("strat", "1h", 1),
    ]
    assert infos[1].test_accuracy == pytest.approx(0.61) and infos[1].latest
    assert [i.strategy for i in list_models(tmp_path, strategy="other")] == ["other"]


def test_resolve_errors_say_what_exists(tmp_path):
    save(tmp_path)
    save(tmp_path, timeframe="4h")
    with pytest.raises(ModelNotFoundError, match="several timeframes; pick one of 1h, 4h") as info:
        resolve_model_path(tmp_path, "strat")
    assert info.value.field == "timeframe"
    with pytest.raises(ModelNotFoundError, match="available: 1") as info:
        resolve_model_path(tmp_path, "strat", "1h", 7)
    assert info.value.field == "version"
    with pytest.raises(ModelNotFoundError, match="no saved models") as info:
        resolve_model_path(tmp_path, "nope")
    assert info.value.field == "strategy"


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("1h_v3", layout.VersionRef("1h", 3)),
        ("1h_latest", layout.VersionRef("1h", "latest")),
        ("v3", layout.VersionRef(None, 3)),
        ("3", layout.VersionRef(None, 3)),
        ("latest", layout.VersionRef(None, "latest")),
        ("4h_v2_v10", layout.VersionRef("4h_v2", 10)),
        ("1h", None),
        ("1h_v", None),
        ("vx", None),
    ],
)
def test_version_references(text, ref):
    assert layout.parse_version_ref(text) == ref


def test_folder_names_are_the_ones_saving_makes(tmp_path):
    saved = save(tmp_path, timeframe="4h")
    assert layout.parse_version_dir(saved.path.name) == ("4h", 1)
    assert layout.parse_version_dir(layout.latest_pointer_name("4h")) is None
    assert layout.parse_version_ref(layout.latest_pointer_name("4h")) == layout.VersionRef(
        "4h", "latest"
    )


def test_metadata_of_numpy_dates_and_nan_is_written_as_json_and_loads(tmp_path):
    stamp = pd.Timestamp("2021-01-04 05:00", tz="UTC")
    saved = save_model(
        tmp_path,
        strategy="strat",
        timeframe="1h",
        model=new_model(),
        config={"name": "strat", "when": dt.date(2021, 1, 4)},
        metrics={"test": {"accuracy": np.float32(0.5), "loss": float("nan")}},
        features={"feature_names": [f"f{i}" for i in range(6)], "lookback_periods": 0},
        metadata={
            "input_size": np.int64(6),
            "architecture": {"hidden_layers": [8, 4], "activation": "relu", "dropout": 0.1},
            "data_start": stamp,
            "source": tmp_path / "data",
        },
    )
    for name in ("config.json", "metrics.json", "features.json", "metadata.json"):
        # NaN/Infinity are not JSON; other readers of these files would refuse them.
        assert "NaN" not in (saved.path / name).read_text(), name
    loaded = load_model(saved.path)
    assert loaded.metadata["input_size"] == 6
    assert loaded.metadata["data_start"] == "2021-01-04T05:00:00+00:00"
    assert loaded.metadata["source"] == str(tmp_path / "data")
    assert loaded.metrics["test"] == {"accuracy": 0.5, "loss": None}
    assert loaded.config["when"] == "2021-01-04"


def test_load_rejects_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing model.pt"):
        load_model(tmp_path)
