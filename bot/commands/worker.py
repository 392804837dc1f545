"""``citybot worker``: the background workers only (filer, notifier, housekeeping), no HTTP.

Run as many as you like beside ``citybot serve --no-workers`` processes; they share the work
through the database and Redis. ``--only`` picks workers, to scale one kind of work on its own.

Example::

    $ citybot worker
    $ citybot worker --only replies       # send residents' replies, beside serve --no-replies
"""

from __future__ import annotations

import argparse
import logging
import sys

from bot import event_loop
from bot.app import build_services, close_services, registered_workers, run_workers
from bot.commands.lifecycle import settings_or_none, stop_on_signals
from bot.config import Settings
from bot.logging import configure_logging

__all__ = ["run"]

log = logging.getLogger("citybot.worker")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_none("citybot worker")
    if settings is None:
        return 2
    only: set[str] | None = None
    if getattr(args, "only", None):
        only = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = only - set(registered_workers())
        if unknown or not only:
            known = ", ".join(sorted(registered_workers()))
            print(
                f"citybot worker: no worker named {', '.join(sorted(unknown)) or '(none)'}; "
                f"the workers are {known}",
                file=sys.stderr,
            )
            return 2
    configure_logging(settings.log_level)
    return event_loop.run(_work(settings, only))


async def _work(settings: Settings, only: set[str] | None) -> int:
    stop = stop_on_signals()
    services = await build_services(settings)
    try:
        async with run_workers(services, only) as names:
            print(f"citybot worker is running: {', '.join(names) or 'no workers'}", flush=True)
            await stop.wait()
            log.info("stopping workers")
    finally:
        await close_services(services)
    return 0
