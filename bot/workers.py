"""The background workers every worker process runs, named once here, and the loop they run in.

| worker | what it does |
|---|---|
| ``filer`` | files every stored report with the city (``city.filer``) |
| ``status_poller`` | follows every filed request at the city (``city.status_poller``) |
| ``status_notices`` | tells residents each status change (``notifier.status_notices``) |
| ``dispatcher`` | sends what the bot starts: filed and status notices (``notifier.dispatcher``) |
| ``broadcasts`` | fans out due broadcasts and sends them, paced, at most once each (``notifier.broadcast_sending``) |
| ``digests`` | writes and sends the daily digest of reports at ``CITYBOT_DIGEST_TIME``, once per alert and day (``notifier.digest_sending``) |
| ``housekeeping`` | makes the message log's coming monthly partitions and forgets what the retention periods say, hourly (``conversations.retention``) |
| ``replies`` | sends residents' replies queued on the reply queue (with Redis) |
| ``held`` | runs the messages held over residents' rate limits once they slow down (``bot.inbound``) |
| ``audit_sealer`` | seals new audit rows into the hash chain every minute (``staff.audit``) |
| ``open_data`` | brings the published performance figures up to date (``staff.analytics_rollup``) |
| ``support_timeouts`` | the support queue's timeouts, every 20 s, told to residents (``staff.support_timeouts``) |
| ``early_warning`` | reads new reports into the burst detector; a burst becomes a suggested incident (``notifier.incident_suggestions``) |

``citybot worker`` runs them all (or ``--only`` some); ``citybot serve`` runs all but
``replies``, whose streams its web app reads itself (``bot.app``). A worker that fails is
logged, counted and started again after a pause (doubling up to a minute); a cycle that fails is
logged and the worker carries on, so one bad moment never ends the filer.

Example::

    async with run_workers(services, only={"filer"}) as names:   # ["filer"]
        await stop.wait()
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.inbound import drain_held
from bot.services import Services
from bot.support_outbox import tell_resident
from staff import audit
from storage.redis import outage_of
from storage.types import utc_now

__all__ = ["WORKERS", "repeat_until_stopped", "run_workers"]

log = logging.getLogger("citybot.workers")

# Seconds a failed worker waits before it is started again (doubling up to the maximum).
WORKER_RESTART_DELAY = 1.0
WORKER_RESTART_MAX = 60.0
HOUSEKEEPING_SECONDS = 3600.0
# A held message waits for its resident's next token (one a second by default): look that often.
HELD_SECONDS = 0.5
STATUS_NOTICES_SECONDS = 5.0
# Residents' erasures append audit rows unsealed (so turns never queue on the chain); until a
# row is sealed an edit to it would not show, so the window is kept to about a minute.
AUDIT_SEAL_SECONDS = 60.0
AUDIT_SEAL_BATCH = 5000
# The support timeouts are minutes long: a sweep this often (or four times per the shortest
# timeout, when that is shorter) keeps each within a few seconds of its time.
SUPPORT_TIMEOUTS_SECONDS = 20.0

# A worker runs until ``stop`` is set, finishing the cycle it is in (see ``run_workers``).
Worker = Callable[[Services, asyncio.Event], Awaitable[None]]


async def repeat_until_stopped(
    cycle: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    *,
    idle_seconds: float,
    what: str,
    redis: Redis | None = None,
) -> None:
    """Run ``cycle`` until ``stop`` is set (or the task is cancelled); rest ``idle_seconds``
    whenever it handled nothing. A failed cycle is logged and the loop carries on; one that
    failed because ``redis`` is away is counted in its outage instead (``storage.redis``), as
    every other loop that reads Redis does, so an outage is not a traceback a second."""
    while not stop.is_set():
        try:
            handled = await cycle()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if redis is None:
                log.exception("%s cycle failed", what)
            else:
                outage_of(redis).failed(f"the {what} cycle", exc)
            handled = 0
        except Exception:
            log.exception("%s cycle failed", what)
            handled = 0
        if handled == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), idle_seconds)


# What a repeating worker does, built from the services: its cycle (returning how much it
# handled) and how long it rests when a cycle handled nothing.
Cycle = tuple[Callable[[], Awaitable[int]], float]


def _repeating(what: str, cycle_of: Callable[[Services], Cycle | None]) -> Worker:
    """A worker that runs ``cycle_of(services)`` until stopped; None: off by its setting."""

    async def worker(services: Services, stop: asyncio.Event) -> None:
        found = cycle_of(services)
        if found is None:
            return
        cycle, idle = found
        await repeat_until_stopped(cycle, stop, idle_seconds=idle, redis=services.redis, what=what)

    return worker


def _digests(services: Services) -> Cycle | None:
    sender = services.digests
    if sender is None:
        return None  # CITYBOT_DIGEST_TIME=off
    return sender.run_once, sender.settings.idle_seconds


def _housekeeping(services: Services) -> Cycle:
    async def purge() -> int:
        # Partitions first: the month about to start must exist before its first message.
        await services.retention.prepare_partitions()
        await services.delivery_retention.prepare_partitions()
        # Deliveries before the log: a broadcast's kept counts read the receipts in the log.
        await services.delivery_retention.forget_old()
        await services.retention.purge_expired()
        return 0  # on the hour, however much was forgotten

    return purge, HOUSEKEEPING_SECONDS


def _audit_sealer(services: Services) -> Cycle:
    async def seal_some() -> int:
        async with services.session_factory() as session, session.begin():
            return await audit.seal(session, limit=AUDIT_SEAL_BATCH)

    return seal_some, AUDIT_SEAL_SECONDS


def _held(services: Services) -> Cycle:
    return functools.partial(drain_held, services), HELD_SECONDS


def _support_timeouts(services: Services) -> Cycle:
    async def sweep() -> int:
        now = utc_now()
        # One transaction: each change, its audit row and the resident's message together.
        async with services.session_factory() as session, session.begin():
            told = await services.support_timeouts.sweep(session, now=now)
            for ticket, text in told:
                await tell_resident(session, ticket, text, now=now)
        return 0

    timeouts = services.support_timeouts
    shortest = min(
        (
            t.total_seconds()
            for t in (timeouts.unclaimed, timeouts.agent_silent, timeouts.resident_silent)
            if t
        ),
        default=SUPPORT_TIMEOUTS_SECONDS * 4,
    )
    return sweep, max(0.05, min(SUPPORT_TIMEOUTS_SECONDS, shortest / 4))


def _early_warning(services: Services) -> Cycle | None:
    warning = services.early_warning
    if warning is None:
        return None  # CITYBOT_EARLY_WARNING_FALSE_ALARMS_PER_DAY=off
    return warning.run_once, warning.idle_seconds


async def _replies(services: Services, stop: asyncio.Event) -> None:
    """Read the reply queue's streams in this process (nothing to do without them)."""
    replies = services.replies
    if not replies.streams:
        return
    replies.start()
    try:
        await stop.wait()
    finally:
        await asyncio.shield(replies.stop(services.settings.shutdown_timeout))


WORKERS: dict[str, Worker] = {
    "filer": _repeating("filer", lambda s: (s.filer.run_once, s.filer.settings.idle_seconds)),
    "status_poller": _repeating(
        "status polling",
        lambda s: (s.status_poller.run_once, s.status_poller.settings.interval_seconds),
    ),
    "status_notices": _repeating(
        "status notices", lambda s: (s.status_notices.notify_pending, STATUS_NOTICES_SECONDS)
    ),
    "dispatcher": _repeating(
        "dispatch", lambda s: (s.dispatcher.run_once, s.dispatcher.settings.idle_seconds)
    ),
    "broadcasts": _repeating(
        "broadcasts", lambda s: (s.broadcasts.run_once, s.broadcasts.settings.idle_seconds)
    ),
    "digests": _repeating("digests", _digests),
    "housekeeping": _repeating("housekeeping", _housekeeping),
    "replies": _replies,
    "audit_sealer": _repeating("audit sealing", _audit_sealer),
    "held": _repeating("held messages", _held),
    "open_data": _repeating(
        "open data", lambda s: (s.rollup.run_once, s.rollup.settings.interval_seconds)
    ),
    "support_timeouts": _repeating("support timeouts", _support_timeouts),
    "early_warning": _repeating("early warning", _early_warning),
}


@contextlib.asynccontextmanager
async def run_workers(
    services: Services,
    only: Collection[str] | None = None,
    *,
    without: Collection[str] = (),
) -> AsyncIterator[list[str]]:
    """Start the workers (those in ``only``, if given; never those in ``without``) under a
    supervisor. Yields their names. On exit each is asked to stop and finishes the cycle it is
    in, within ``CITYBOT_SHUTDOWN_TIMEOUT``; only one still busy after that is cancelled. A
    cycle cancelled inside a SQLite statement leaves the connection to a teardown task that can
    outlive the event loop and hang the process's exit (aiosqlite 0.22, SQLAlchemy 2.1)."""
    unknown = set(only or ()) - set(WORKERS)
    if unknown:
        raise ValueError(f"no worker named {', '.join(sorted(unknown))}")
    chosen = [name for name in WORKERS if (only is None or name in only) and name not in without]
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_supervise(name, WORKERS[name], services, stop), name=f"worker:{name}")
        for name in chosen
    ]
    try:
        yield chosen
    finally:
        stop.set()
        if tasks:
            _, busy = await asyncio.wait(tasks, timeout=services.settings.shutdown_timeout)
            for task in busy:
                log.warning(
                    "worker did not stop in time; cancelled", extra={"worker": task.get_name()}
                )
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _supervise(name: str, worker: Worker, services: Services, stop: asyncio.Event) -> None:
    """Keep one worker running: a crash is logged, counted and followed by a restart."""
    delay = WORKER_RESTART_DELAY
    while not stop.is_set():
        try:
            await worker(services, stop)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            services.metrics.errors.labels(where=f"worker:{name}").inc()
            log.exception("worker failed; restarting", extra={"worker": name, "delay": delay})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, WORKER_RESTART_MAX)
