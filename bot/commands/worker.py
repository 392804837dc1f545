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
import signal
import sys

from bot.app import build_services, close_services, run_workers
from bot.config import ConfigError, Settings
from bot.logging import configure_logging

__all__ = ["run"]

log = logging.getLogger("citybot.worker")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"citybot worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return asyncio.run(_work(settings))


async def _work(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    services = await build_services(settings)
    try:
        async with run_workers(services) as names:
            print(f"citybot worker is running: {', '.join(names) or 'no workers'}", flush=True)
            await stop.wait()
            log.info("stopping workers")
    finally:
        await close_services(services)
    return 0
