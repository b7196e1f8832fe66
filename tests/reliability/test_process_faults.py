"""Trainers killed, terminated and frozen mid-epoch; the broker stopped and killed; Postgres
stopped: every training still ends once, with every confirmed event in the log."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.reliability.rig import Rig

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(420)]

# Long enough (tens of seconds of training, even on an idle machine) that the fault lands
# mid-run, never after the end.
EPOCHS = 100


async def _two_running(rig: Rig, client, epochs: int = EPOCHS) -> list[str]:
    trainings = [await rig.submit(client, epochs), await rig.submit(client, epochs)]
    for training_id in trainings:
        await rig.until_training(client, training_id)
    return trainings


async def test_kill_9_of_a_trainer_mid_epoch_while_another_trains(rig: Rig) -> None:
    async with rig.client() as client:
        victim, other = await _two_running(rig, client)
        trainer_id = (await rig.view(client, victim))["trainer_id"]
        rig.processes[trainer_id].popen.kill()  # SIGKILL, to the process this rig started
        rig.processes[trainer_id].stop()
        rig.start_trainer(trainer_id)
        views = await rig.until_terminal(client, [victim, other])
    assert views[victim]["status"] == "completed" and views[victim]["attempt"] == 2, views
    assert views[other]["status"] == "completed" and views[other]["attempt"] == 1, views
    await rig.check()


async def test_sigterm_gives_the_training_back_and_the_other_trainer_finishes_it(
    rig: Rig,
) -> None:
    async with rig.client() as client:
        training_id = await rig.submit(client, epochs=EPOCHS)
        view = await rig.until_training(client, training_id)
        trainer = rig.processes[view["trainer_id"]]
        trainer.popen.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(trainer.popen.wait, 60) == 0, trainer.tail()
        final = await rig.until_view(
            client, training_id, lambda v: v["status"] == "completed", what="completed"
        )
        rig.start_trainer(view["trainer_id"])
    assert final["attempt"] == 2 and final["trainer_id"] != view["trainer_id"], final
    await rig.check()


async def test_sigstop_of_a_trainer_mid_epoch(rig: Rig) -> None:
    async with rig.client() as client:
        training_id = await rig.submit(client, epochs=EPOCHS)
        view = await rig.until_training(client, training_id)
        trainer = rig.processes[view["trainer_id"]]
        trainer.popen.send_signal(signal.SIGSTOP)
        try:
            # Its AMQP heartbeats stop: the broker closes its connection and hands the request
            # to the other trainer.
            final = await rig.until_view(
                client, training_id, lambda v: v["status"] == "completed", what="completed"
            )
        finally:
            trainer.popen.send_signal(signal.SIGCONT)
        assert final["attempt"] == 2 and final["trainer_id"] != view["trainer_id"], final
        # The frozen trainer wakes up with a run whose delivery is gone: it must not end it.
        await rig.until_view(
            client, training_id, lambda v: v["status"] == "completed", what="still completed"
        )
        rig.check_alive()
    await rig.check()


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_the_broker_going_away_mid_run(rig: Rig, how: str) -> None:
    async with rig.client() as client:
        trainings = await _two_running(rig, client)
        await asyncio.to_thread(rig.rabbit.stop if how == "stop" else rig.rabbit.kill)
        await rig.until_not_ready()  # the API noticed
        await asyncio.to_thread(rig.rabbit.start)
        await rig.until_ready()
        views = await rig.until_terminal(client, trainings)
    assert {v["status"] for v in views.values()} == {"completed"}, views
    rig.check_alive()
    await rig.check()


async def test_postgres_stopped_and_started_mid_run(rig: Rig) -> None:
    async with rig.client() as client:
        trainings = await _two_running(rig, client)
        await asyncio.to_thread(rig.postgres.stop)
        await rig.until_not_ready()
        await asyncio.to_thread(rig.postgres.start)
        await rig.until_ready()
        views = await rig.until_terminal(client, trainings)
    assert {v["status"] for v in views.values()} == {"completed"}, views
    rig.check_alive()
    await rig.check()
