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
    from pydantic import ValidationError

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
    try:
        settings = TrainerSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as error:
        for problem in error.errors():
            field = ".".join(str(part) for part in problem["loc"]) or "settings"
            typer.secho(f"error: {field}: {problem['msg']}", fg="red", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(run_trainer(settings))


def register(app: typer.Typer) -> None:
    app.command("trainer")(trainer)
