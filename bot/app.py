"""The web application of ``citybot serve``: the routes, and what runs while it serves.

``create_app`` builds every service (``bot.bootstrap.build_services``) and hands them to
``app_for``, which registers each route module explicitly (none of them changes ``Services``,
so their order does not matter) and ties the process's moving parts to the app's life:

* on start: the reply queue's readers (with Redis: this process sends replies), Telegram long
  polling (``--telegram-polling``) and the workers (``bot.workers``, all but ``replies``);
* on stop, within ``settings.shutdown_timeout`` in all: no new turns (aiohttp stops listening,
  polling stops), turns in flight finish, replies being sent finish or go back to their queue,
  workers are cancelled, then pools and channels close.

Example::

    settings = Settings.from_env()
    app = await create_app(settings)          # SQLite upgraded, stores built, routes added
    web.run_app(app, host=settings.host, port=settings.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.bootstrap import build_services, close_services
from bot.config import Settings
from bot.services import Services
from bot.telegram_polling import telegram_polling
from bot.web import (
    api_index,
    dashboard,
    media,
    open311,
    open_data,
    operations,
    resident_export,
    staff_api,
    staff_console,
    webchat,
    webhooks,
)
from bot.web.middleware import error_middleware, forwarded_by, security_headers
from bot.workers import run_workers

__all__ = ["CLIENT_MAX_SIZE", "SERVICES_KEY", "app_for", "create_app", "handed_back"]

log = logging.getLogger("citybot.app")

# Bodies above this are refused by aiohttp with 413 before a handler sees them; the web chat
# API is stricter (64 KB). Webhooks and the admin API stay well below 1 MB.
CLIENT_MAX_SIZE = 1024 * 1024

SERVICES_KEY = web.AppKey("services", Services)
# The workers and polling started with the app, stopped first on shutdown.
_STOPPING = web.AppKey("stopping", contextlib.AsyncExitStack)


def handed_back(replies: int, turns: int) -> str:
    """The log line of a shutdown that ran out of time: what it left for another process."""
    return f"stopping: handed back {replies} replies, {turns} turns"


async def create_app(settings: Settings, *, workers: bool = True) -> web.Application:
    """The aiohttp application for ``citybot serve``, ready to run."""
    return app_for(await build_services(settings), workers=workers)


def app_for(services: Services, *, workers: bool = True) -> web.Application:
    """The application over ``services``, which it closes when it stops."""
    app = web.Application(
        client_max_size=CLIENT_MAX_SIZE,
        # Outermost first: the headers go on the error middleware's answers too.
        middlewares=[
            forwarded_by(services.settings.trusted_proxies),
            security_headers(hsts=services.settings.public_url.startswith("https://")),
            error_middleware(services.metrics),
        ],
    )
    app[SERVICES_KEY] = services
    operations.add_routes(app, services)
    webchat.add_routes(app, services)
    webhooks.add_routes(app, services)
    open311.add_routes(app, services)
    media.add_routes(app, services)
    resident_export.add_routes(app, services)
    staff_api.add_routes(app, services)
    staff_console.add_routes(app, services)
    api_index.add_routes(app, services)
    dashboard.add_routes(app, services)
    open_data.add_routes(app, services)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # What is built by now (forms, gazetteer, routes, pools) lives as long as the process.
        # A full garbage collection walked all of it, a pause of about 80 ms for every turn in
        # flight (measured at 800 messages/s); frozen, the collector skips it (about 5 ms).
        gc.freeze()
        try:
            async with contextlib.AsyncExitStack() as running:
                if workers:
                    # The replies worker's job is done by this process's own readers.
                    await running.enter_async_context(run_workers(services, without={"replies"}))
                # Without Redis: the replies a killed process committed go first.
                await services.replies.recover(services.channels)
                services.replies.start()
                if services.replies.sender.queues_in_turn and not services.replies.streams:
                    log.info("replies are left to citybot worker processes (send_replies is off)")
                await running.enter_async_context(telegram_polling(services))
                app[_STOPPING] = running.pop_all()
                yield
        finally:
            stack = app.get(_STOPPING)
            if stack is not None:
                await stack.aclose()  # a no-op when shutdown got there first
            await close_services(services)
            gc.unfreeze()

    async def stop_taking_work(app: web.Application) -> None:
        # On shutdown, while aiohttp waits for requests in flight: polling stops (no new
        # turns), turns in flight finish, replies in flight finish or go back to their queue,
        # all within ONE grace period (each step gets what the ones before left of it).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + services.settings.shutdown_timeout
        # The console's live pages end now (they reconnect to another process): aiohttp would
        # otherwise wait for those endless responses until its own timeout.
        await services.support_feed.close()
        stack = app.get(_STOPPING)
        if stack is not None:
            await stack.aclose()
        turns = 0
        if not await services.wait_idle(max(0.0, deadline - loop.time())):
            # Not committed, so not marked processed: the provider's retry is served.
            turns = services.turns_in_flight
        replies = await services.replies.stop(max(0.0, deadline - loop.time()))
        if turns or replies:
            log.warning(handed_back(replies, turns))

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(stop_taking_work)
    return app
