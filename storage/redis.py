"""The Redis client every part of citybot shares, made from ``CITYBOT_REDIS_URL``, and the one
account each process keeps of that Redis being away.

A Redis that goes away is seen by every loop that reads it (a reply stream per channel, lock
renewals, held messages...), each retrying about once a second. Logged as they fail, that is
a traceback three times a second for as long as it lasts. Instead each loop reports to the
client's ``RedisOutage`` (``outage_of``): one warning when Redis goes, a line with the count of
failures every ``summary_seconds`` while it stays away, and one when it is back with the count
and how long it lasted. No tracebacks: a refused connection is not a bug.

Example::

    redis = connect_redis("redis://127.0.0.1:6379/0")
    await redis.ping()
    outage = outage_of(redis)
    try:
        await redis.xreadgroup(...)
    except (OSError, RedisError) as exc:
        outage.failed("reading the reply stream", exc)   # logged once, then counted
    else:
        outage.recovered()                                # "Redis is back" after an outage
    await redis.aclose()
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable

from redis.asyncio import Redis

__all__ = ["RedisOutage", "connect_redis", "outage_of"]

log = logging.getLogger("citybot.redis")

# While Redis stays away, how often the count of failures so far is logged.
SUMMARY_SECONDS = 60.0


def connect_redis(url: str) -> Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``); connects on first use."""
    return Redis.from_url(url)


class RedisOutage:
    """Counts the failures of one process's Redis while it is away, logging a few lines only."""

    def __init__(
        self,
        *,
        summary_seconds: float = SUMMARY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.summary_seconds = summary_seconds
        self._clock = clock
        self.failures = 0  # in the current outage
        self._since: float | None = None
        self._summarised_at = 0.0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, where: str, exc: BaseException) -> None:
        """A Redis call failed (``where``: what was being done); logs only the first of an
        outage, then a summary every ``summary_seconds``."""
        now = self._clock()
        self.failures += 1
        if self._since is None:
            self._since = self._summarised_at = now
            log.warning(
                "Redis unavailable (%s): further failures are counted, not logged, until it is "
                "back",
                where,
                extra={"error": type(exc).__name__, "reason": str(exc)[:200]},
            )
        elif now - self._summarised_at >= self.summary_seconds:
            self._summarised_at = now
            log.warning(
                "Redis still unavailable",
                extra={"failures": self.failures, "down_seconds": round(now - self._since, 1)},
            )

    def recovered(self) -> None:
        """A Redis call succeeded: ends the outage (with its summary), if there was one."""
        if self._since is None:
            return
        log.warning(
            "Redis is back",
            extra={
                "failures": self.failures,
                "down_seconds": round(self._clock() - self._since, 1),
            },
        )
        self._since = None
        self.failures = 0


# One account per client, so every loop of a process using that client adds to the same count;
# gone with the client (tests build many).
_OUTAGES: weakref.WeakKeyDictionary[Redis, RedisOutage] = weakref.WeakKeyDictionary()


def outage_of(redis: Redis) -> RedisOutage:
    """The outage account of ``redis``'s process-wide client."""
    outage = _OUTAGES.get(redis)
    if outage is None:
        outage = _OUTAGES[redis] = RedisOutage()
    return outage
