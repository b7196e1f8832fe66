"""Upcasters: one function per (type, from_version) step, applied on read until current.

An event stored or published with an older schema_version is raised step by step to the version
its class declares. Each step has a fixture test in tests/unit/events_store/test_upcasting.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Raw = dict[str, Any]
Upcaster = Callable[[Raw], Raw]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def decorate(fn: Upcaster) -> Upcaster:
        UPCASTERS[(event_type, from_version)] = fn
        return fn

    return decorate


def upcast(raw: Raw, current_version: int) -> Raw:
    """Raise `raw` (a flat event dict) to `current_version`; unknown steps are an error."""
    version = int(raw.get("schema_version", 1))
    if version > current_version:
        raise ValueError(
            f"{raw.get('type')} schema_version {version} is newer than this code "
            f"understands ({current_version})"
        )
    while version < current_version:
        step = UPCASTERS.get((raw["type"], version))
        if step is None:
            raise ValueError(f"no upcaster for {raw['type']} v{version} -> v{version + 1}")
        raw = step(dict(raw))
        version += 1
        raw["schema_version"] = version
    return raw


@upcaster("BatchProgress", 1)
def batch_progress_v1_to_v2(raw: Raw) -> Raw:
    # v1: {loss, accuracy, percent (0..100)}; v2: {running_loss, running_accuracy, progress 0..1}
    raw["running_loss"] = raw.pop("loss")
    raw["running_accuracy"] = raw.pop("accuracy")
    raw["progress"] = float(raw.pop("percent")) / 100.0
    raw.setdefault("eta_s", None)
    return raw


@upcaster("BatchProgress", 2)
def batch_progress_v2_to_v3(raw: Raw) -> Raw:
    # v3 only widens running_loss / running_accuracy to "null when unknown". A v2 event's 0.0
    # may have stood for "unknown" (reported before the epoch's first fold) but cannot be told
    # from a real 0, so it is kept as it is.
    return raw


@upcaster("Started", 1)
def started_v1_to_v2(raw: Raw) -> Raw:
    # v2 says where an attempt resumes; every v1 attempt started from the beginning.
    raw.setdefault("resume_epoch", None)
    raw.setdefault("resume_batch", 0)
    return raw


@upcaster("Completed", 1)
def completed_v1_to_v2(raw: Raw) -> Raw:
    # v1 models were saved on the trainer's disk only: no artifact, no recorded lineage.
    model = dict(raw["model"])
    model.setdefault("artifact", None)
    model.setdefault("lineage", None)
    raw["model"] = model
    return raw
