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
top of the rate, and the providers count any one-second window. The spacing's allowance for
jitter, the lanes and the holds work as ``channels.pacing`` describes.

Booking is one round trip. A sender that slept for its slot must learn whether a 429 came
meanwhile: every booking's answer carries the count of holds so far, so in a busy process (one
that booked within the last few milliseconds) it knows without asking; otherwise it asks
(``HGET``), a second round trip only when the account is quiet.

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
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from channels.pacing import (
    DEFAULT_BULK_HORIZON,
    DEFAULT_JITTER_ALLOWANCE,
    MAX_LATE,
    BasePacer,
    Lane,
    Pacer,
)

__all__ = ["RedisPacer"]

log = logging.getLogger("citybot.pacing")

# The schedule of an idle account is forgotten after this long (a new one starts empty).
_IDLE_MS = 60_000

# Script calls one pacer has in flight at most: the Redis client's pool (shared by the whole
# process, 100 connections by default) answers "Too many connections" rather than waiting.
_MAX_CALLS = 8

# Seconds for which the count of holds in a booking's answer is taken as current.
_FRESH = 0.005

_NOW = """
local now = tonumber(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

# KEYS: the account's hash, the address's key. ARGV: now in microseconds ('' for Redis's clock),
# microseconds between sends, between sends to one address (0: no limit), how far ahead this
# lane may book (-1: any), the idle expiry in ms, the slot this sender gave up ('' if none).
# Returns {what, wait in microseconds, holds so far, the slot booked, now}, where what is 1 (booked: send after the wait), 0 (the schedule is booked beyond this
# lane's horizon: come back after the wait) or -1 (held, or the address must wait: come back).
# Nothing is booked while held or while the address must wait, so no slot is wasted on a sender
# that could not use it.
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
  local address_next = tonumber(redis.call('GET', KEYS[2])) or 0
  -- A slot this sender booked and gave up unused (ARGV[6]) does not hold its address back.
  if address_next ~= (tonumber(ARGV[6]) or -1) + address_interval then
    ready = math.max(ready, address_next)
  end
end
if ready > now then
  return {-1, ready - now, holds, 0, now}
end
local slot = math.max(now, next_free)
if horizon >= 0 and slot - now > horizon then
  return {0, slot - now - horizon, holds, 0, now}
end
redis.call('HSET', KEYS[1], 'next', string.format('%d', slot + interval))
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[5]), math.ceil((slot - now) / 1000) + 1000))
if address_interval > 0 then
  redis.call('SET', KEYS[2], string.format('%d', slot + address_interval),
             'PX', math.ceil((slot + address_interval - now) / 1000) + 1000)
end
return {1, slot - now, holds, slot, now}
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
local holds = redis.call('HINCRBY', KEYS[1], 'holds', 1)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + math.ceil(tonumber(ARGV[2]) / 1000))
return holds
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
        jitter_allowance: float = DEFAULT_JITTER_ALLOWANCE,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._redis = redis
        self._tag = f"{prefix}{{pace:{account}}}"
        self._schedule = f"{self._tag}:rate"
        # Stretched for jitter (``channels.pacing``), rounded up to whole microseconds.
        stretch = 1_000_000 * (1.0 + jitter_allowance)
        self._interval = math.ceil(stretch / per_second)
        self._address_interval = (
            math.ceil(stretch / per_address_per_second) if per_address_per_second else 0
        )
        self._bulk_horizon = round(bulk_horizon * 1_000_000)
        self._late_us = round(jitter_allowance * 1_000_000)
        self._clock = clock
        self._sleep = sleep
        self._book = redis.register_script(_BOOK)
        self._hold = redis.register_script(_HOLD)
        self._alone = Pacer(
            per_second, per_address_per_second, jitter_allowance=jitter_allowance, sleep=sleep
        )
        self._bulk_turn = asyncio.Lock()
        # The client's pool refuses more connections than it has, so calls queue here instead.
        self._calls = asyncio.Semaphore(_MAX_CALLS)
        # The most holds this process knows of: from its own 429s and every booking's answer.
        self._holds_seen = 0
        self._learnt_at = -math.inf
        self._offset: int | None = None
        self._degraded = False

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
            self._alone_since(exc)
            await self._alone.wait(address, lane)
        else:
            self._shared_again()

    async def hold(self, seconds: float, address: str | None = None) -> None:
        # Every hold stops the whole account: a 429 tells us the account is over its limit.
        try:
            async with self._calls:
                holds = await self._hold(
                    keys=[self._schedule],
                    args=[self._now(), round(seconds * 1_000_000), _IDLE_MS],
                )
            self._learn_holds(int(holds))  # this process's sleepers book again at once
        except RedisError as exc:
            self._alone_since(exc)
            await self._alone.hold(seconds)

    async def _wait_shared(self, address: str, lane: Lane) -> None:
        keys = [self._schedule, self.address_key(address)]
        late_again = 0
        given_up = ""
        while True:
            if lane is Lane.BULK:
                # One bulk sender of this process at a time asks for a slot: a thousand that
                # were all told "come back in 2 ms" would otherwise all ask again together.
                async with self._bulk_turn:
                    booked, due, holds, slot = await self._book_slot(
                        keys, self._bulk_horizon, given_up
                    )
            else:
                booked, due, holds, slot = await self._book_slot(keys, -1, given_up)
            remaining = due - self._local_us()
            if remaining > 0:
                await self._sleep(remaining / 1_000_000)
            if not booked:
                continue  # it was held, or this address had to wait: ask again
            late = self._local_us() - due
            if lane is Lane.BULK and late > self._late_us and late_again < MAX_LATE:
                # Woken too late (the process was busy): sent now, it would bunch up with the
                # sends of the next slots, and the provider would count more than its limit. A
                # reply goes anyway: booked again it would queue behind the bulk sends.
                late_again += 1
                given_up = str(slot)
                continue
            if remaining <= 0 or await self._holds_known() <= holds:
                return
            # A 429 came while this sender slept: its slot may fall inside the hold.

    async def _book_slot(
        self, keys: list[str], horizon: int, given_up: str
    ) -> tuple[bool, int, int, int]:
        """Book the next slot within ``horizon``: (booked, when to send it or to ask again on
        this host's clock in microseconds, holds so far, the slot on Redis's clock).

        Not booked: the account is held or the address must wait; the caller sleeps that out of
        the bulk turn, so the other bulk senders keep booking meanwhile.
        """
        while True:
            async with self._calls:
                what, wait_us, holds, slot, now = await self._book(
                    keys=keys,
                    args=[
                        self._now(),
                        self._interval,
                        self._address_interval,
                        horizon,
                        _IDLE_MS,
                        given_up,
                    ],
                )
            local = self._local_us()
            offset = self._learn_offset(local - int(now))
            self._learn_holds(int(holds))
            if what == 1:
                return True, int(slot) + offset, int(holds), int(slot)
            if what == -1:
                return False, local + int(wait_us), int(holds), 0
            # Booked beyond the horizon: wait in turn, so this sender is the next to book.
            await self._sleep(int(wait_us) / 1_000_000)

    def _learn_offset(self, sample: int) -> int:
        """This host's clock minus Redis's, from one answer (``sample`` = arrival - Redis's now).

        Every sample is the true offset plus the answer's delay, so the least is the best guess;
        it creeps up a microsecond an answer to follow a clock that drifts. A slot's moment on
        this host's clock then does not include how long its answer took to arrive, which a busy
        process would otherwise add to every send.
        """
        self._offset = sample if self._offset is None else min(sample, self._offset + 1)
        return self._offset

    def _local_us(self) -> int:
        return round((self._clock() if self._clock is not None else time.time()) * 1_000_000)

    def _learn_holds(self, holds: int) -> None:
        self._holds_seen = max(self._holds_seen, holds)
        self._learnt_at = self._monotonic()

    async def _holds_known(self) -> int:
        """The count of holds so far: as the last answer said, if it is fresh, else from Redis."""
        if self._monotonic() - self._learnt_at > _FRESH:
            async with self._calls:
                self._learn_holds(int(await self._redis.hget(self._schedule, "holds") or 0))
        return self._holds_seen

    def _monotonic(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic()

    def _alone_since(self, exc: RedisError) -> None:
        if not self._degraded:
            self._degraded = True
            log.warning("shared pacing unavailable, pacing this process alone: %s", exc)

    def _shared_again(self) -> None:
        if self._degraded:
            self._degraded = False
            log.warning("shared pacing is back")

    def _now(self) -> str:
        return "" if self._clock is None else str(round(self._clock() * 1_000_000))
