"""`ktrdr tail` as a real process: it sees matching events and exits after --count."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from libs.events.bus.amqp.adapter import AmqpBus
from tests.contract.conftest import AMQP_URL
from tests.support import events as make

pytestmark = pytest.mark.integration
KTRDR = str(Path(sys.executable).with_name("ktrdr"))


async def test_tail_prints_matching_events_as_json_lines(amqp_bus: AmqpBus) -> None:
    env = {**os.environ, "KTRDR_BROKER_URL": AMQP_URL}
    process = await asyncio.create_subprocess_exec(
        KTRDR,
        "tail",
        "--json",
        "--count",
        "2",
        "-k",
        "training.cancel_requested",
        "-k",
        "trainer.*",
        "--prefix",
        amqp_bus.topology.prefix,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = await asyncio.wait_for(process.stderr.readline(), 30)
        assert b"listening on" in ready, ready
        cancel, beat = make.cancel(), make.heartbeat()
        await amqp_bus.publish_many([make.progress(), cancel, make.requested("any"), beat])
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    assert [line["event"]["event_id"] for line in lines] == [
        str(cancel.event_id),
        str(beat.event_id),
    ]
    assert [line["routing_key"] for line in lines] == [
        "training.cancel_requested",
        "trainer.heartbeat",
    ]


def test_tail_refuses_the_in_process_bus() -> None:
    from typer.testing import CliRunner

    from services.cli.app import app

    result = CliRunner().invoke(app, ["tail", "--broker-url", "memory://"])
    assert result.exit_code == 2
    assert "amqp://" in result.output
