"""Structured logs: JSON lines by a setting, text by default, the training's fields on every line
logged in its context (a worker thread included), one handler however often it is set up."""

from __future__ import annotations

import contextvars
import json
import logging
import threading

import pytest

from libs.logs import configure_logging, log_context
from libs.settings import LogSettings


@pytest.fixture
def captured(capsys: pytest.CaptureFixture[str]):
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    yield capsys
    root = logging.getLogger()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_json_lines_carry_the_training_fields(captured) -> None:
    configure_logging(LogSettings(log_format="json", log_level="INFO"))
    log = logging.getLogger("ktrdr.test")
    with log_context(training_id="t-1", attempt=2, trainer_id="gpu-1", tenant="acme"):
        log.info("epoch %d done", 3)
    log.info("no training here")
    lines = [json.loads(line) for line in captured.readouterr().err.splitlines()]
    assert lines[0]["message"] == "epoch 3 done" and lines[0]["level"] == "INFO"
    assert (lines[0]["training_id"], lines[0]["attempt"]) == ("t-1", 2)
    assert (lines[0]["trainer_id"], lines[0]["tenant"]) == ("gpu-1", "acme")
    assert "training_id" not in lines[1]


def test_text_is_the_default_and_names_the_fields(captured) -> None:
    configure_logging(LogSettings())
    with log_context(training_id="t-9", tenant="acme"):
        logging.getLogger("ktrdr.test").warning("slow")
    line = captured.readouterr().err.strip()
    assert line.endswith("WARNING ktrdr.test: slow [training_id=t-9 tenant=acme]")
    assert not line.startswith("{")


def test_a_worker_thread_started_in_the_context_logs_with_its_fields(captured) -> None:
    configure_logging(LogSettings(log_format="json"))
    with log_context(training_id="t-2"):
        context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(logging.getLogger("ktrdr.pipeline").info, "in the thread")
    )
    thread.start()
    thread.join()
    assert json.loads(captured.readouterr().err)["training_id"] == "t-2"


def test_setting_up_twice_keeps_one_handler_so_each_line_is_written_once(captured) -> None:
    configure_logging(LogSettings())
    configure_logging(LogSettings())
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0001 -> 0002")
    assert captured.readouterr().err.count("Running upgrade") == 1
