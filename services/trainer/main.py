"""`ktrdr trainer`: settings → the composition root's bus → TrainerService, with signal handling.

SIGTERM (or Ctrl-C): stop taking work, let the running training finish within
shutdown_grace_s, otherwise stop it and give its request back unacked (another trainer takes
it), then exit 0. A second signal gives the running training back at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from libs.logs import configure_logging
from libs.metrics import serve_metrics
from services.trainer.settings import TrainerSettings

log = logging.getLogger("ktrdr.trainer")


def run_trainer(settings: TrainerSettings) -> int:
    configure_logging(settings)
    serve_metrics(settings.metrics_port)
    from libs.pipeline.device import configure_threads

    configure_threads()
    return asyncio.run(serve(settings))


async def serve(settings: TrainerSettings) -> int:
    from libs.events.bus import is_in_process
    from services.bootstrap import open_stack
    from services.trainer.service import TrainerService

    if is_in_process(settings.broker_url):
        log.warning(
            "KTRDR_BROKER_URL is not set: this trainer uses an in-process bus and will only see "
            "requests published inside this process (use `ktrdr up`, or set amqp://...)"
        )
    async with open_stack(broker=settings) as stack:
        service = TrainerService(settings, stack.bus)
        signals = asyncio.Queue[signal.Signals]()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, signals.put_nowait, signum)
        await service.start()
        received = await signals.get()
        log.info("%s received: shutting down", received.name)
        stopping = asyncio.create_task(service.stop())
        while not stopping.done():
            second = asyncio.ensure_future(signals.get())
            await asyncio.wait({stopping, second}, return_when=asyncio.FIRST_COMPLETED)
            if second.done():
                log.info("second signal: giving the running trainings back now")
                service.stop_now("second signal")
            else:
                second.cancel()
        await stopping
    return 0
