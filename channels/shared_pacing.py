"""Pacing shared by every process that sends for one provider account: a schedule in Redis.

The in-process ``Pacer`` keeps one process under a provider's limit; two worker processes would
send at twice it. ``RedisPacer`` keeps the account's schedule in Redis instead (a token bucket
in its GCRA form: the time of the next free send slot), and books each send in one Lua script,
so every process draws from the same bucket:

* ``{prefix}{pace:<account>}:rate``: a hash: ``next`` (the account's next free slot), ``held``
  (no send before: a 429's "retry after") and ``holds`` (how many holds so far);
* ``{prefix}{pace:<account>}:to:<digest>``: the next slot for one recipient (Telegram: one a
  second per chat), named by a digest of the address so no phone number shows in Redis's keys.

Every key of an account carries its hash tag, ``{pace:<account>}``, so one script touches one
Redis Cluster slot. Times are whole microseconds of Redis's own clock (``TIME``), so processes on
different hosts share one clock; tests pass ``clock`` instead to step time by hand.

The burst is one message: a bucket that could fill up while idle would let a burst through on
top of the rate, and the providers count any one-second window. Lanes and holds work as
``channels.pacing`` describes. Booking is one round trip; a sender that slept for its slot makes a
second (``HGET holds``) to learn whether a 429 came meanwhile.

If Redis cannot be reached the pacer falls back to pacing this process alone (and logs it): a
message a little too early beats no message at all, and the provider's 429 still holds us back.

Example::

    pacer = RedisPacer(redis, "telegram:123456", per_second=30, per_address_per_second=1)
    await pacer.wait("987654321")              # books this process's slot in the shared schedule
    await pacer.hold(3.0)                      # every process waits 3 s
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from channels.pacing import DEFAULT_BULK_HORIZON, BasePacer, Lane, Pacer

__all__ = ["RedisPacer"]

log = logging.getLogger("citybot.pacing")

# The schedule of an idle account is forgotten after this long (a new one starts empty).
_IDLE_MS = 60_000

_NOW = """
local now = tonumber(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

# KEYS: the account's hash, the address's key. ARGV: now in microseconds ('' for Redis's clock),
# microseconds between sends, between sends to one address (0: no limit), how far ahead this
# lane may book (-1: any), the idle expiry in ms. Returns {booked (1) or come back (0), wait in
# microseconds, holds so far}. Nothing is booked while held or while the address must wait, so
# no slot is wasted on a sender that could not use it.
_BOOK = (
    _NOW
    + """
local interval = tonumber(ARGV[2])
local address_interval = tonumber(ARGV[3])
local horizon = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'next', 'held', 'holds')
local next_free = tonumber(state[1]) or 0
local held = tonumber(state[2]) or 0
local holds = tonumber(state[3]) or 0
local ready = math.max(now, held)
if address_interval > 0 then
  ready = math.max(ready, tonumber(redis.call('GET', KEYS[2])) or 0)
end
if ready > now then
  return {0, ready - now, holds}
end
local slot = math.max(now, next_free)
if horizon >= 0 and slot - now > horizon then
  return {0, slot - now - horizon, holds}
end
redis.call('HSET', KEYS[1], 'next', string.format('%d', slot + interval))
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[5]), math.ceil((slot - now) / 1000) + 1000))
if address_interval > 0 then
  redis.call('SET', KEYS[2], string.format('%d', slot + address_interval),
             'PX', math.ceil((slot + address_interval - now) / 1000) + 1000)
end
return {1, slot - now, holds}
"""
)

# KEYS: the account's hash. ARGV: now (as above), the hold in microseconds, the idle expiry.
_HOLD = (
    _NOW
    + """
local held_until = now + tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[1], 'held')) or 0
if held_until > held then
  redis.call('HSET', KEYS[1], 'held', string.format('%d', held_until))
end
redis.call('HINCRBY', KEYS[1], 'holds', 1)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + math.ceil(tonumber(ARGV[2]) / 1000))
return 1
"""
)


class RedisPacer(BasePacer):
    """Pace sends for ``account`` (e.g. ``telegram:<bot id>``) across every process."""

    def __init__(
        self,
        redis: Redis,
        account: str,
        per_second: float,
        per_address_per_second: float | None = None,
        *,
        prefix: str = "citybot:",
        bulk_horizon: float = DEFAULT_BULK_HORIZON,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._redis = redis
        self._tag = f"{prefix}{{pace:{account}}}"
        self._schedule = f"{self._tag}:rate"
        # Rounded up to whole microseconds: a hair under the limit, never over it.
        self._interval = math.ceil(1_000_000 / per_second)
        self._address_interval = (
            math.ceil(1_000_000 / per_address_per_second) if per_address_per_second else 0
        )
        self._bulk_horizon = round(bulk_horizon * 1_000_000)
        self._clock = clock
        self._sleep = sleep
        self._book = redis.register_script(_BOOK)
        self._hold = redis.register_script(_HOLD)
        self._alone = Pacer(per_second, per_address_per_second, sleep=sleep)

    @property
    def schedule_key(self) -> str:
        """The account's hash in Redis (tests and operators look at it)."""
        return self._schedule

    def address_key(self, address: str) -> str:
        digest = hashlib.blake2b(address.encode(), digest_size=10).hexdigest()
        return f"{self._tag}:to:{digest}"

    async def wait(self, address: str, lane: Lane = Lane.REPLY) -> None:
        try:
            await self._wait_shared(address, lane)
        except RedisError as exc:
            log.warning("shared pacing unavailable, pacing this process alone: %s", exc)
            await self._alone.wait(address, lane)

    async def hold(self, seconds: float, address: str | None = None) -> None:
        # Every hold stops the whole account: a 429 tells us the account is over its limit.
        try:
            await self._hold(
                keys=[self._schedule], args=[self._now(), round(seconds * 1_000_000), _IDLE_MS]
            )
        except RedisError as exc:
            log.warning("shared pacing unavailable, holding this process alone: %s", exc)
            await self._alone.hold(seconds)

    async def _wait_shared(self, address: str, lane: Lane) -> None:
        horizon = self._bulk_horizon if lane is Lane.BULK else -1
        keys = [self._schedule, self.address_key(address)]
        while True:
            booked, wait_us, holds = await self._book(
                keys=keys,
                args=[self._now(), self._interval, self._address_interval, horizon, _IDLE_MS],
            )
            if wait_us > 0:
                await self._sleep(wait_us / 1_000_000)
            if not booked:
                continue
            if wait_us <= 0 or int(await self._redis.hget(self._schedule, "holds") or 0) == holds:
                return
            # A 429 came while this sender slept: its slot may fall inside the hold.

    def _now(self) -> str:
        return "" if self._clock is None else str(round(self._clock() * 1_000_000))
