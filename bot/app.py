"""The application: everything built from ``Settings``, routes registered, workers started.

``create_app`` is what ``citybot serve`` runs; ``build_services`` and ``run_workers`` are what
``citybot worker`` runs. Parts of citybot plug in at two points, named once here:

* routes: a module in ``ROUTE_PROVIDERS`` defines ``add_routes(app, services) -> None``
  (it may also ``app.add_subapp(prefix, subapp)``);
* workers: ``register_worker(name, factory)``, where ``factory(services)`` is a coroutine that runs
  until cancelled (a worker module in ``WORKER_MODULES`` calls it when imported).

Example::

    settings = Settings.from_env()
    app = await create_app(settings)          # SQLite upgraded, stores built, routes added
    web.run_app(app, host=settings.host, port=settings.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from bot.config import Settings
from bot.db.migrate import upgrade_database
from bot.db.session import create_engine, create_sessionmaker
from bot.metrics import Metrics
from bot.services import Services, WorkerFactory
from bot.web.middleware import error_middleware, security_headers
from channels.webchat import WebChatChannel
from conversations.dedupe import BaseDedupe, RedisDedupe, SqlDedupe
from conversations.locks import BaseLocks, InProcessLocks, RedisLocks
from conversations.rate_limit import BaseRateLimiter, InProcessRateLimiter, RedisRateLimiter
from conversations.state_store import BaseStateStore, RedisStateStore, SqlStateStore
from conversations.turn import TurnLoop
from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.loader import standard_forms

__all__ = [
    "ROUTE_PROVIDERS",
    "SERVICES_KEY",
    "WORKER_MODULES",
    "build_services",
    "close_services",
    "create_app",
    "register_worker",
    "registered_workers",
    "run_workers",
]

log = logging.getLogger("citybot.app")

# "module:function" entries; each function is ``add_routes(app, services) -> None``. Append yours.
ROUTE_PROVIDERS: list[str] = [
    "bot.web.operations:add_routes",
    "bot.web.webchat:add_routes",
    "bot.web.webhooks:add_routes",
    "bot.open311.wiring:add_routes",
    "bot.telegram_polling:add_routes",
    "bot.web.media:add_routes",
]
# Modules imported before workers start; each calls ``register_worker`` at import. Append yours.
WORKER_MODULES: list[str] = [
    "bot.housekeeping",
    "bot.filing_workers",
    "bot.reply_workers",
]
# Seconds a failed worker waits before it is started again (doubling up to the maximum).
WORKER_RESTART_DELAY = 1.0
WORKER_RESTART_MAX = 60.0
# Bodies above this are refused by aiohttp with 413 before a handler sees them; the web chat
# API is stricter (64 KB). Webhooks and the admin API stay well below 1 MB.
CLIENT_MAX_SIZE = 1024 * 1024

SERVICES_KEY = web.AppKey("services", Services)

_WORKERS: dict[str, WorkerFactory] = {}


def register_worker(name: str, factory: WorkerFactory) -> None:
    """Run ``factory(services)`` in every process that runs workers.

    Example::

        async def run_filer(services: Services) -> None:
            while True:
                await file_due_submissions(services)
                await asyncio.sleep(5)

        register_worker("filer", run_filer)
    """
    _WORKERS[name] = factory


def registered_workers() -> dict[str, WorkerFactory]:
    for module in WORKER_MODULES:
        importlib.import_module(module)
    return dict(_WORKERS)


async def build_services(settings: Settings) -> Services:
    """Upgrade the database, connect the stores and build the turn loop.

    SQL stores by default (durable, nothing else to run); with ``CITYBOT_REDIS_URL`` the state,
    dedupe markers, locks and rate limits move to Redis so several processes share them.
    """
    await upgrade_database(settings.database_url)
    engine = create_engine(settings.database_url)
    session_factory = create_sessionmaker(engine)
    redis: Redis | None = None
    try:
        if settings.redis_url:
            redis = Redis.from_url(settings.redis_url)
            # Kept well past the idle timeout, so a returning resident is offered to continue.
            ttl = max(timedelta(hours=settings.form_idle_hours) * 4, timedelta(days=7))
            states: BaseStateStore = RedisStateStore(redis, ttl=int(ttl.total_seconds()))
            dedupe: BaseDedupe = RedisDedupe(redis)
            locks: BaseLocks = RedisLocks(redis)
            limiter: BaseRateLimiter = RedisRateLimiter(
                redis, rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst
            )
        else:
            states = SqlStateStore(session_factory)
            dedupe = SqlDedupe(session_factory)
            locks = InProcessLocks()
            limiter = InProcessRateLimiter(
                rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst
            )
        turn_loop = TurnLoop(
            sessionmaker=session_factory,
            states=states,
            dedupe=dedupe,
            locks=locks,
            rate_limiter=limiter,
            forms=standard_forms(),
            gazetteer=default_gazetteer(),
            idle_timeout=timedelta(hours=settings.form_idle_hours),
        )
    except BaseException:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
        raise
    return Services(
        settings=settings,
        metrics=Metrics(),
        engine=engine,
        session_factory=session_factory,
        turn_loop=turn_loop,
        redis=redis,
        channels={"webchat": WebChatChannel(settings.session_secret)},
    )


async def close_services(services: Services) -> None:
    """Close channels, Redis and the database pool; each is closed even if another fails."""
    for channel in services.channels.values():
        with contextlib.suppress(Exception):
            await channel.close()
    with contextlib.suppress(Exception):
        await services.turn_loop.close()
    if services.redis is not None:
        with contextlib.suppress(Exception):
            await services.redis.aclose()
    await services.engine.dispose()


@contextlib.asynccontextmanager
async def run_workers(services: Services, only: set[str] | None = None) -> AsyncIterator[list[str]]:
    """Start every registered worker (or those named in ``only``) under a supervisor; cancel
    them all on exit."""
    tasks: list[asyncio.Task[None]] = []
    workers = {
        name: factory
        for name, factory in registered_workers().items()
        if only is None or name in only
    }
    for name, factory in workers.items():
        task = asyncio.create_task(_supervise(name, factory, services), name=f"worker:{name}")
        tasks.append(task)
    try:
        yield sorted(workers)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _supervise(name: str, factory: WorkerFactory, services: Services) -> None:
    """Keep one worker running: a crash is logged, counted and followed by a restart."""
    delay = WORKER_RESTART_DELAY
    while True:
        try:
            await factory(services)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            services.metrics.errors.labels(where=f"worker:{name}").inc()
            log.exception("worker failed; restarting", extra={"worker": name, "delay": delay})
        await asyncio.sleep(delay)
        delay = min(delay * 2, WORKER_RESTART_MAX)


def _add_routes(app: web.Application, services: Services) -> None:
    for entry in ROUTE_PROVIDERS:
        module_name, _, function = entry.partition(":")
        add_routes: Any = getattr(importlib.import_module(module_name), function or "add_routes")
        add_routes(app, services)


async def create_app(settings: Settings, *, workers: bool = True) -> web.Application:
    """The aiohttp application for ``citybot serve``, ready to run.

    Shutdown is graceful: aiohttp stops accepting connections, turns in flight finish (up to
    ``settings.shutdown_timeout``), workers are cancelled, then pools and channels close.
    """
    services = await build_services(settings)
    app = web.Application(
        client_max_size=CLIENT_MAX_SIZE,
        middlewares=[error_middleware(services.metrics), security_headers],
    )
    app[SERVICES_KEY] = services
    _add_routes(app, services)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # What is built by now (forms, gazetteer, routes, pools) lives as long as the process.
        # A full garbage collection walked all of it, a pause of about 80 ms for every turn in
        # flight (measured at 800 messages/s); frozen, the collector skips it (about 5 ms).
        gc.freeze()
        # One context, so the order on the way out is fixed: workers stop, then pools close.
        try:
            if workers:
                async with run_workers(services):
                    yield
            else:
                yield
        finally:
            await close_services(services)
            gc.unfreeze()

    async def finish_turns(app: web.Application) -> None:
        if not await services.wait_idle(settings.shutdown_timeout):
            log.warning("shutdown: turns still in flight after the timeout")

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(finish_turns)
    return app
