"""``citybot worker``: the background workers only (filer, notifier, housekeeping), no HTTP.

Run as many as you like beside ``citybot serve --no-workers`` processes; they share the work
through the database and Redis. ``--only`` picks workers, to scale one kind of work on its own.

With ``CITYBOT_WORKER_METRICS_PORT`` it also answers /metrics, /healthz and /readyz there (on
``CITYBOT_HOST``), for Prometheus.

Example::

    $ citybot worker
    $ citybot worker --only replies       # send residents' replies, beside serve --no-replies
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot import event_loop
from bot.bootstrap import build_services, check_city, close_services
from bot.commands.lifecycle import ready_to_start, settings_or_none, stop_on_signals, stop_within
from bot.config import Settings
from bot.logging import configure_logging
from bot.preflight import database_reason
from bot.services import Services
from bot.web import operations
from bot.workers import WORKERS, run_workers
from storage.redis_upgrade import LayoutMismatch

__all__ = ["run"]

log = logging.getLogger("citybot.worker")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_none("citybot worker")
    if settings is None:
        return 2
    only: set[str] | None = None
    if getattr(args, "only", None):
        only = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = only - set(WORKERS)
        if unknown or not only:
            known = ", ".join(WORKERS)
            print(
                f"citybot worker: no worker named {', '.join(sorted(unknown)) or '(none)'}; "
                f"the workers are {known}",
                file=sys.stderr,
            )
            return 2
    configure_logging(settings.log_level)
    if not ready_to_start("citybot worker", settings):
        return 2
    return event_loop.run(_work(settings, only))


async def _work(settings: Settings, only: set[str] | None) -> int:
    stop = stop_on_signals()
    try:
        services = await build_services(settings)
    except (SQLAlchemyError, OSError) as exc:
        # The database went away since ready_to_start asked, or refused the migrations.
        print(f"citybot worker: cannot start: {database_reason(exc)}", file=sys.stderr)
        return 2
    except LayoutMismatch as exc:
        print(f"citybot worker: cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        async with contextlib.AsyncExitStack() as running:
            names = await running.enter_async_context(run_workers(services, only))
            if settings.worker_metrics_port is not None:
                host, port = settings.host, settings.worker_metrics_port
                try:
                    await _serve_metrics(running, services, host, port)
                except OSError as exc:
                    # Two workers on one host with the same port, most likely.
                    print(
                        f"citybot worker: cannot listen on {host}:{port} "
                        f"(CITYBOT_WORKER_METRICS_PORT): {exc.strerror or exc}",
                        file=sys.stderr,
                    )
                    return 1
            print(f"citybot worker is running: {', '.join(names) or 'no workers'}", flush=True)
            if only is None or {"filer", "status_poller"} & only:
                problem = await check_city(services)
                if problem is not None:
                    log.error(
                        "the city's back end cannot be reached: %s; reports wait until it can "
                        "(set CITYBOT_PUBLIC_URL to the address of citybot serve, or "
                        "OPEN311_ENDPOINT)",
                        problem,
                    )
            await stop.wait()
            log.info("stopping workers")
            await stop_within(
                running.pop_all().aclose(),
                stop,
                settings.shutdown_timeout,
                lambda: f"stopping: handed back {services.replies.sender.pending} replies",
            )
    finally:
        await close_services(services)
    return 0


async def _serve_metrics(
    running: contextlib.AsyncExitStack, services: Services, host: str, port: int
) -> None:
    """/metrics (the filer's, the dispatcher's and the queues' series live in this process),
    /healthz and /readyz, as ``serve`` answers them; stopped with the workers."""
    app = web.Application()
    operations.add_routes(app, services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    running.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    log.info("metrics served", extra={"host": host, "port": port})
