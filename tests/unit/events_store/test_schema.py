"""The schema and the read-model registry agree: no table can be forgotten by append, rebuild
or the stores, and every event the log does not keep has a read model that records it."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import pytest
import sqlalchemy as sa

from libs.events import catalog as ev
from libs.events import readmodels, tables
from libs.events.columns import metadata
from libs.events.readmodels.registry import READ_MODELS, REBUILT, RECORDING
from libs.events.readmodels.unit import ReadModel

# Tables in the metadata that are deliberately not read models (Alembic's own is not declared).
NOT_READ_MODELS = {"events", "log_head", "relay_cursor", "idempotency_keys", "api_keys"}


def test_every_table_is_a_registered_read_model_or_explicitly_excluded() -> None:
    registered = {model.name for model in READ_MODELS}
    declared = set(tables.metadata.tables)
    assert declared - registered - NOT_READ_MODELS == set(), "neither registered nor excluded"
    assert registered & NOT_READ_MODELS == set()
    assert {t.name for t in tables.LOG_TABLES} == NOT_READ_MODELS
    assert tables.metadata is metadata  # importing tables declares the whole schema
    everything = {t.name for t in (*tables.LOG_TABLES, *tables.READ_MODEL_TABLES)}
    assert everything == declared


def test_every_read_model_module_is_registered() -> None:
    """A read model's module that nobody imports declares no table the test above could see:
    every ReadModel defined in the readmodels package must be in the registry."""
    registered = {id(model) for model in READ_MODELS}
    defined = []
    for info in pkgutil.iter_modules(readmodels.__path__, f"{readmodels.__name__}."):
        module = importlib.import_module(info.name)
        defined += [v for v in vars(module).values() if isinstance(v, ReadModel)]
    assert defined, "the scan found no read model at all"
    unregistered = [model.name for model in defined if id(model) not in registered]
    assert unregistered == [], "defined but not in registry.READ_MODELS"


def test_registered_read_models_are_distinct_and_ephemeral_ones_say_why() -> None:
    names = [model.name for model in READ_MODELS]
    assert len(names) == len(set(names))
    for model in READ_MODELS:
        assert (model in REBUILT) == (model.ephemeral is None)
        assert model.ephemeral is None or model.ephemeral.strip()


def test_events_the_log_does_not_keep_are_recorded_by_an_ephemeral_read_model() -> None:
    for event_type, cls in ev.REGISTRY.items():
        if cls.STORED:
            continue
        recorders = RECORDING.get(event_type, ())
        assert recorders, f"{event_type} is neither stored nor recorded"
        assert all(not m.rebuilt for m in recorders)


def test_derived_rows_come_from_stored_event_types_of_the_catalog() -> None:
    for model in READ_MODELS:
        for event_type in model.derive:
            assert ev.REGISTRY[event_type].STORED, (model.name, event_type)


def test_a_row_type_that_does_not_match_its_table_is_refused() -> None:
    table = sa.Table("t_check", sa.MetaData(), sa.Column("k", sa.Integer, primary_key=True))

    @dataclasses.dataclass(frozen=True)
    class Wrong:
        key: int

        def to_row(self) -> dict[str, int]:
            return {"k": self.key}

    with pytest.raises(ValueError, match="do not match the columns"):
        ReadModel(table=table, row_type=Wrong)
