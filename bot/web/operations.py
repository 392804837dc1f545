"""What operators and load balancers ask: is the process up, can it serve, what is it doing.

Example::

    GET /healthz   -> 200 {"status": "ok", "version": "0.1.0"}
    GET /readyz    -> 200 {"status": "ready", "checks": {"database": "ok", "redis": "ok",
                                                          "city": {"ok": true}},
                           "redis": {"topology": "cluster", "stream_shards": 12}}
                      503 {"status": "unavailable", "checks": {"database": "ok", "redis": "down",
                                                                "city": {...}}}

The read replica (``CITYBOT_DATABASE_REPLICA_URL``) is shown the same way, never making the
process unready: ``"replica": {"ok": false, "serving": "primary", "reason": "..."}`` while its
reads go to the primary (``storage.replica``).

The city's back end is a check that never makes the process unready: reports are stored and
filed once it answers, so a load balancer must keep sending messages; the entry
(``"city": {"ok": false, "reason": "..."}``) tells the operator, and is asked at most every
``CITY_CHECK_SECONDS`` so probes do not hammer the city.
    GET /metrics   -> Prometheus text format
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

from aiohttp import web
from sqlalchemy import text

from bot.bootstrap import check_city
from bot.queue_backlogs import QUEUES, Backlog, read_backlogs
from bot.services import Services
from bot.version import VERSION
from staff.equity import equity_alerts
from staff.support_stats import support_stats
from storage.redis import redis_topology
from storage.types import utc_now

__all__ = ["add_routes"]

# A readiness probe must answer before the load balancer gives up on it.
CHECK_TIMEOUT = 2.0
# How long the city's answer to /readyz is reused.
CITY_CHECK_SECONDS = 5.0


class _CityCheck:
    """The city's reachability, asked at most once every ``CITY_CHECK_SECONDS`` (and once at
    a time, however many probes arrive together)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._lock = asyncio.Lock()
        self._answer: dict[str, Any] = {}
        self._asked_at = float("-inf")

    async def __call__(self) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            if now - self._asked_at >= CITY_CHECK_SECONDS:
                problem = await check_city(self._services, timeout=CHECK_TIMEOUT)
                self._answer = {"ok": True} if problem is None else {"ok": False, "reason": problem}
                self._asked_at = time.monotonic()
            return self._answer


def add_routes(app: web.Application, services: Services) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": VERSION})

    city = _CityCheck(services)

    async def readyz(request: web.Request) -> web.Response:
        checks: dict[str, Any] = {"database": await _check(_database(services))}
        if services.redis is not None:
            checks["redis"] = await _check(_redis(services))
        ready = all(v == "ok" for v in checks.values())
        checks["city"] = await city()  # never makes the process unready
        if services.settings.database_replica_url is not None:
            # Never makes the process unready either: its reads go to the primary meanwhile.
            checks["replica"] = (await services.analytics_reads.health()).as_dict()
        body: dict[str, Any] = {"status": "ready" if ready else "unavailable", "checks": checks}
        if services.settings.redis_url is not None and services.replies.queue is not None:
            # Which Redis this process runs on (no address: that is the operator's to know).
            body["redis"] = {
                "topology": redis_topology(services.settings.redis_url).kind,
                "stream_shards": services.replies.queue.layout.shards,
            }
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        # A store down: /readyz says so; its series read as unknown, the others still answer.
        try:
            await asyncio.wait_for(_reply_backlog(services), CHECK_TIMEOUT)
        except Exception:
            for name in _reply_channels(services):
                services.metrics.replies_waiting.labels(channel=name).set(math.nan)
                services.metrics.replies_oldest_seconds.labels(channel=name).set(math.nan)
        try:
            backlogs = await asyncio.wait_for(
                read_backlogs(services.session_factory), CHECK_TIMEOUT
            )
        except Exception:
            backlogs = [Backlog(q, -1, math.nan, -1) for q in QUEUES]
        for backlog in backlogs:
            unknown = backlog.waiting < 0
            services.metrics.queue_waiting.labels(queue=backlog.queue).set(
                math.nan if unknown else backlog.waiting
            )
            services.metrics.queue_oldest_seconds.labels(queue=backlog.queue).set(
                backlog.oldest_seconds
            )
            services.metrics.queue_failing.labels(queue=backlog.queue).set(
                math.nan if unknown else backlog.failing
            )
        # Database down: the same.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_equity(services), CHECK_TIMEOUT)
        # The database down: the support series keep their last values (/readyz says why).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_support_queue(services), CHECK_TIMEOUT)
        body, content_type = services.metrics.exposition()
        # aiohttp wants the charset apart from the media type.
        media_type, _, params = content_type.partition(";")
        charset = params.split("charset=")[-1].strip() if "charset=" in params else None
        response = web.Response(body=body, content_type=media_type.strip())
        if charset:
            response.charset = charset
        return response

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


async def _reply_backlog(services: Services) -> None:
    """Set the reply stream gauges: how many replies wait on each channel, and for how long."""
    queue = services.replies.queue
    if services.redis is None or queue is None:
        return
    names = _reply_channels(services)
    streams = [(name, stream) for name in names for stream in queue.streams(name)]
    async with services.redis.pipeline(transaction=False) as pipe:
        for _, stream in streams:
            pipe.xlen(stream)
            pipe.xrange(stream, count=1)
        answers = await pipe.execute()
    now_ms = time.time() * 1000
    waiting: dict[str, int] = dict.fromkeys(names, 0)
    oldest_of: dict[str, float] = dict.fromkeys(names, 0.0)
    for i, (name, _) in enumerate(streams):
        # A channel's backlog is that of all its shards; its age, the oldest shard's.
        waiting[name] += int(answers[2 * i])
        first = answers[2 * i + 1]
        if first:
            # An entry's id starts with the time it was added, in milliseconds.
            added_ms = int(first[0][0].split(b"-")[0])
            oldest_of[name] = max(oldest_of[name], (now_ms - added_ms) / 1000)
    for name in names:
        oldest = oldest_of[name]
        services.metrics.replies_waiting.labels(channel=name).set(waiting[name])
        services.metrics.replies_oldest_seconds.labels(channel=name).set(oldest)


def _reply_channels(services: Services) -> list[str]:
    if services.redis is None or services.replies.queue is None:
        return []
    return sorted(name for name in services.channels if name != "webchat")


async def _equity(services: Services) -> None:
    """Set the equity watch's gauge: how many alerts are current (an analytics read: on the
    replica when there is one)."""
    settings = services.settings
    async with services.analytics_reads() as session:
        alerts = await equity_alerts(
            session, threshold=settings.equity_threshold, period=settings.equity_period
        )
    services.metrics.equity_alerts.set(sum(1 for a in alerts if a.current))


async def _support_queue(services: Services) -> None:
    async with services.session_factory() as session:
        services.metrics.support.latest = await support_stats(session, now=utc_now())


async def _database(services: Services) -> None:
    async with services.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _redis(services: Services) -> None:
    assert services.redis is not None
    await services.redis.ping()


async def _check(probe: object) -> str:
    """'ok', or 'down' when the probe fails or takes too long (never the error text: it may
    carry a connection URL)."""
    assert asyncio.iscoroutine(probe)
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)
    except Exception:
        return "down"
    return "ok"
