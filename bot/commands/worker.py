"""``citybot worker``: the background workers only (filer, notifier, housekeeping), no HTTP.

Run as many as you like beside ``citybot serve --no-workers`` processes; they share the work
through the database and Redis.

Example::

    $ citybot worker
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from bot.app import build_services, close_services, run_workers
from bot.commands.lifecycle import settings_or_none, stop_on_signals
from bot.config import Settings
from bot.logging import configure_logging

__all__ = ["run"]

log = logging.getLogger("citybot.worker")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_none("citybot worker")
    if settings is None:
        return 2
    configure_logging(settings.log_level)
    return asyncio.run(_work(settings))


async def _work(settings: Settings) -> int:
    stop = stop_on_signals()
    services = await build_services(settings)
    try:
        async with run_workers(services) as names:
            print(f"citybot worker is running: {', '.join(names) or 'no workers'}", flush=True)
            await stop.wait()
            log.info("stopping workers")
    finally:
        await close_services(services)
    return 0
