"""Upcasters (libs/events/upcasting.py): one fixture per step, decoded through the codec."""

from __future__ import annotations

import pytest

from libs.events.catalog import BatchProgress, Completed, Started
from libs.events.codec import from_dict
from libs.events.upcasting import UPCASTERS, upcast

ENVELOPE = {
    "event_id": "7f1c1a56-4c44-4a4e-9d8e-0c7f6f4f2b10",
    "training_id": "t-1",
    "tenant": "default",
    "source": "trainer:t1",
    "attempt": 1,
    "seq": 3,
    "occurred_at": "2026-01-05T09:00:00+00:00",
}


def test_batch_progress_v1_becomes_v2() -> None:
    v1 = {
        **ENVELOPE,
        "type": "BatchProgress",
        "schema_version": 1,
        "epoch": 1,
        "total_epochs": 2,
        "batch": 3,
        "total_batches": 4,
        "loss": 0.5,
        "accuracy": 0.6,
        "samples_per_s": 10.0,
        "percent": 25.0,
    }
    event = from_dict(v1)
    assert isinstance(event, BatchProgress) and event.schema_version == BatchProgress.SCHEMA_VERSION
    assert (event.running_loss, event.running_accuracy, event.progress) == (0.5, 0.6, 0.25)
    assert event.eta_s is None


def test_batch_progress_v2_becomes_v3_with_its_figures_kept() -> None:
    v2 = {
        **ENVELOPE,
        "type": "BatchProgress",
        "schema_version": 2,
        "epoch": 1,
        "total_epochs": 2,
        "batch": 1,
        "total_batches": 4,
        "running_loss": 0.0,
        "running_accuracy": 0.25,
        "samples_per_s": 10.0,
        "progress": 0.125,
    }
    event = from_dict(v2)
    assert isinstance(event, BatchProgress) and event.schema_version == 3
    # A v2 zero cannot be told from a real zero: it is kept, not guessed away.
    assert (event.running_loss, event.running_accuracy) == (0.0, 0.25)


def test_started_v1_becomes_v2_starting_from_the_beginning() -> None:
    v1 = {
        **ENVELOPE,
        "type": "Started",
        "schema_version": 1,
        "trainer_id": "t1",
        "host": "h",
        "device": {"type": "cpu", "name": "cpu"},
    }
    event = from_dict(v1)
    assert isinstance(event, Started) and event.schema_version == 2
    assert (event.resume_epoch, event.resume_batch) == (None, 0)


def test_completed_v1_becomes_v2_without_artifact_or_lineage() -> None:
    v1 = {
        **ENVELOPE,
        "type": "Completed",
        "schema_version": 1,
        "model": {
            "strategy": "s",
            "timeframe": "1h",
            "version": 3,
            "path": "models/s/1h_v3",
            "sha256": "ab" * 32,
            "bytes": 1234,
        },
        "training_metrics": {"best_epoch": 2},
        "test_metrics": {"accuracy": 0.5},
        "duration_s": 1.5,
    }
    event = from_dict(v1)
    assert isinstance(event, Completed) and event.schema_version == 2
    assert (event.model.version, event.model.path, event.model.bytes) == (3, "models/s/1h_v3", 1234)
    assert event.model.artifact is None and event.model.lineage is None
    assert event.test_metrics == {"accuracy": 0.5}


def test_every_step_up_to_the_current_version_exists() -> None:
    # a new step needs its fixture test here
    assert set(UPCASTERS) == {
        ("BatchProgress", 1),
        ("BatchProgress", 2),
        ("Started", 1),
        ("Completed", 1),
    }
    assert BatchProgress.SCHEMA_VERSION == 3
    assert Completed.SCHEMA_VERSION == 2


def test_a_newer_version_than_the_code_knows_is_refused() -> None:
    with pytest.raises(ValueError, match="newer than this code"):
        upcast({"type": "BatchProgress", "schema_version": 4}, 3)
