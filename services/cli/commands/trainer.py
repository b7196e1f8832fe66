"""`ktrdr trainer`: run a bus trainer until SIGTERM (settings from KTRDR_* env or options)."""

from __future__ import annotations

from pathlib import Path

import typer


def trainer(
    broker_url: str | None = typer.Option(None, help="Overrides KTRDR_BROKER_URL (amqp://...)."),
    concurrency: int | None = typer.Option(None, help="Trainings at once (KTRDR_CONCURRENCY)."),
    device: str | None = typer.Option(None, help="auto | cpu | cuda | mps (KTRDR_DEVICE)."),
    models_dir: Path | None = typer.Option(None, help="Where models are saved."),
    data_dir: Path | None = typer.Option(None, help="Where {SYMBOL}_{TF}.csv files are."),
    trainer_id: str | None = typer.Option(None, help="Default: host-pid-random."),
) -> None:
    """Consume training requests from the bus and train them, publishing progress events."""
    from services.cli.settings_errors import settings_or_exit
    from services.trainer.main import run_trainer
    from services.trainer.settings import TrainerSettings

    given = {
        "broker_url": broker_url,
        "concurrency": concurrency,
        "device": device,
        "models_dir": models_dir,
        "data_dir": data_dir,
        "trainer_id": trainer_id,
    }
    settings = settings_or_exit(TrainerSettings, given)
    raise typer.Exit(run_trainer(settings))


def register(app: typer.Typer) -> None:
    app.command("trainer")(trainer)
