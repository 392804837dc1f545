"""``citybot serve``: the web server (web chat, webhooks, Open311, operations) and the workers.

Example::

    $ citybot serve --port 8080
    citybot is running: web chat at http://127.0.0.1:8080/
    $ citybot serve --telegram-polling     # no public URL: ask Telegram for updates instead
    $ citybot serve --no-workers --no-replies   # take messages in only; workers do the rest
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import event_loop
from bot.app import SERVICES_KEY, create_app, handed_back
from bot.commands.lifecycle import ready_to_start, settings_or_none, stop_on_signals, stop_within
from bot.config import Settings, listener_url
from bot.logging import configure_logging
from bot.preflight import database_reason
from staff.accounts import has_active_admin
from storage.redis_upgrade import LayoutMismatch

__all__ = ["run"]

log = logging.getLogger("citybot.serve")

# After the app's shutdown, how long aiohttp lets the handlers still running end on their own
# (twice: before and after cancelling them).
HANDLERS_SECONDS = 0.5


def run(args: argparse.Namespace) -> int:
    settings = settings_or_none("citybot serve")
    if settings is None:
        return 2
    if getattr(args, "telegram_polling", False):
        if not settings.telegram_bot_token:
            print("citybot serve: --telegram-polling needs TELEGRAM_BOT_TOKEN", file=sys.stderr)
            return 2
        settings = dataclasses.replace(settings, telegram_polling=True)
    if getattr(args, "no_replies", False):
        settings = dataclasses.replace(settings, send_replies=False)
    if not settings.send_replies and not settings.redis_url:
        # Without Redis a reply lives only in this process's memory: no other process could
        # send it, so it would never go.
        print(
            "citybot serve: --no-replies (CITYBOT_SEND_REPLIES=0) needs CITYBOT_REDIS_URL, "
            "where replies wait for citybot worker",
            file=sys.stderr,
        )
        return 2
    host = getattr(args, "host", None) or settings.host
    port = settings.port if getattr(args, "port", None) is None else int(args.port)
    settings = dataclasses.replace(settings, host=host, port=port)
    if not os.environ.get("CITYBOT_PUBLIC_URL", "").strip():
        # Unset, the public URL is this listener: providers' signatures are checked against
        # it and the workers file with the built-in Open311 server there.
        settings = dataclasses.replace(settings, public_url=listener_url(host, port))
    configure_logging(settings.log_level)
    if not ready_to_start("citybot serve", settings):
        return 2
    return event_loop.run(
        _serve(settings, host, port, workers=not getattr(args, "no_workers", False))
    )


async def _serve(settings: Settings, host: str, port: int, *, workers: bool) -> int:
    stop = stop_on_signals()

    try:
        app = await create_app(settings, workers=workers)
    except (SQLAlchemyError, OSError) as exc:
        # The database went away since ready_to_start asked, or refused the migrations.
        print(f"citybot serve: cannot start: {database_reason(exc)}", file=sys.stderr)
        return 2
    except LayoutMismatch as exc:
        print(f"citybot serve: cannot start: {exc}", file=sys.stderr)
        return 2
    services = app[SERVICES_KEY]
    # The app's own shutdown (bot.app) waits the grace period for turns and replies; requests
    # still running after it are those turns, which it handed back: aiohttp then waits for them
    # only briefly before it cancels their handlers.
    runner = web.AppRunner(app, shutdown_timeout=HANDLERS_SECONDS, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(
            f"citybot serve: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    except BaseException:
        await runner.cleanup()
        raise
    bound = _bound_port(runner) or port
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    print(f"citybot is running: web chat at http://{shown_host}:{bound}/", flush=True)
    await _first_admin_hint(services.session_factory)
    log.info("serving", extra={"host": host, "port": bound})
    await stop.wait()
    log.info("stopping: finishing turns in flight")
    await stop_within(
        runner.cleanup(),
        stop,
        settings.shutdown_timeout,
        lambda: handed_back(services.replies.sender.pending, services.turns_in_flight),
    )
    log.info("stopped")
    return 0


async def _first_admin_hint(sessions: async_sessionmaker[AsyncSession]) -> None:
    """A new city's first step on the staff side; said after the line above, which scripts and
    tests wait for."""
    try:
        async with sessions() as session:
            if await has_active_admin(session):
                return
    except SQLAlchemyError:
        log.warning("could not check for a staff admin", exc_info=True)
        return
    print(
        "No staff admin yet. Create the first one (in this directory, or with the same "
        'CITYBOT_DATABASE_URL):\n  citybot staff add you@city.gov --role admin --name "Your Name"',
        flush=True,
    )


def _bound_port(runner: web.AppRunner) -> int | None:
    """The port actually bound (differs from the one asked for when that was 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None
