"""Pacing shared by every process that sends for one provider account: a schedule in Redis.

The in-process ``Pacer`` keeps one process under a provider's limit; two worker processes would
send at twice it. ``RedisPacer`` keeps the account's schedule in Redis instead (a token bucket
in its GCRA form: the time of the next free send slot), and books each send in one Lua script,
so every process draws from the same bucket:

* ``{prefix}{pace:<provider>:<account digest>}:rate``: a hash: ``next`` (the account's next free slot), ``held``
  (no send before: a 429's "retry after") and ``holds`` (how many holds so far);
* ``{prefix}{pace:<provider>:<account digest>}:to:<digest>``: the next slot for one recipient
  (Telegram: one a second per chat), named by a digest of the address so no phone number shows
  in Redis's keys. The account is a digest too: a Twilio account is named by its sending number.

Every key of an account carries its hash tag, ``{pace:<provider>:<account digest>}``, so one
script touches one Redis Cluster slot. Times are whole microseconds of Redis's own clock (``TIME``), so processes on
different hosts share one clock; tests pass ``clock`` instead to step time by hand.

The burst is one message: a bucket that could fill up while idle would let a burst through on
top of the rate, and the providers count any one-second window. The spacing's allowance for
jitter, the lanes and the holds work as ``channels.pacing`` describes.

Booking is one round trip, shared: a reply books its own slot at once, but a process's bulk
senders (broadcasts, status updates) queue for one booker task, which books the slots of up to
64 of them in one script call (consecutive slots, each address still held to its own rate).
One call per bulk send, one at a time, was both most of the pacing's CPU and its ceiling: a
process could book no faster than Redis answered. A sender that slept for its slot must learn
whether a 429 came meanwhile: every booking's answer carries the count of holds so far, so in a
busy process (one that booked within the last few milliseconds) it knows without asking;
otherwise it asks (``HGET``), and the senders that wake together share one such question.

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

# Seconds for which the count of holds in a booking's answer is taken as current. A busy
# process books a batch every few tens of milliseconds, so within this it rarely has to ask; a
# sender that did ask after waking would often be too late for its slot and book again. A send
# this much into another process's hold at worst meets a 429 of its own, which holds us too.
_FRESH = 0.05

# Bulk senders booked in one script call at most.
_BATCH = 64

# A booking's slot when the schedule had no room within the lane's horizon.
_NO_ROOM = -1

# (booked, when to send or ask again on this host's clock in us, holds so far, the slot).
_Booking = tuple[bool, int, int, int]

_NOW = """
local now = tonumber(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

# KEYS: the account's hash, then one key per address to book for. ARGV: now in microseconds
# ('' for Redis's clock), microseconds between sends, between sends to one address (0: no limit),
# how far ahead this lane may book (-1: any), the idle expiry in ms, then per address the slot
# its sender gave up ('' if none). Returns {holds so far, now}, then per address {what, value}:
# what 1, booked (value: the slot); 0, the schedule is booked beyond this lane's horizon (value:
# the wait until it is not); -1, held, or the address must wait (value: the wait). Nothing is
# booked while held or while an address must wait, so no slot is wasted on a sender that could
# not use it. Several addresses in one call book consecutive slots: one round trip serves a
# whole batch of a process's bulk senders.
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
local answer = {holds, now}
local booked = false
for i = 2, #KEYS do
  local ready = math.max(now, held)
  if address_interval > 0 then
    local address_next = tonumber(redis.call('GET', KEYS[i])) or 0
    -- A slot this sender booked and gave up unused does not hold its address back.
    if address_next ~= (tonumber(ARGV[4 + i]) or -1) + address_interval then
      ready = math.max(ready, address_next)
    end
  end
  local slot = math.max(now, next_free)
  if ready > now then
    table.insert(answer, -1)
    table.insert(answer, ready - now)
  elseif horizon >= 0 and slot - now > horizon then
    table.insert(answer, 0)
    table.insert(answer, slot - now - horizon)
  else
    next_free = slot + interval
    booked = true
    if address_interval > 0 then
      redis.call('SET', KEYS[i], string.format('%d', slot + address_interval),
                 'PX', math.ceil((slot + address_interval - now) / 1000) + 1000)
    end
    table.insert(answer, 1)
    table.insert(answer, slot)
  end
end
if booked then
  redis.call('HSET', KEYS[1], 'next', string.format('%d', next_free))
  redis.call('PEXPIRE', KEYS[1],
             math.max(tonumber(ARGV[5]), math.ceil((next_free - now) / 1000) + 1000))
end
return answer
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
        provider, _, rest = account.partition(":")
        named = hashlib.blake2b(rest.encode(), digest_size=8).hexdigest()
        self._tag = f"{prefix}{{pace:{provider}:{named}}}"
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
        self._book_script = redis.register_script(_BOOK)
        self._hold = redis.register_script(_HOLD)
        self._alone = Pacer(
            per_second, per_address_per_second, jitter_allowance=jitter_allowance, sleep=sleep
        )
        # Bulk senders waiting for a slot, and the task booking for them (``_book_bulk``).
        self._bulk_asking: list[tuple[str, str, asyncio.Future[_Booking]]] = []
        self._bulk_booker: asyncio.Task[None] | None = None
        self._bulk_chunk = max(1, min(_BATCH, self._bulk_horizon // self._interval // 4))
        self._holds_asked: asyncio.Future[int] | None = None
        self._holds_asked_at = -math.inf
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
        late_again = 0
        given_up = ""
        while True:
            if lane is Lane.BULK:
                booked, due, holds, slot = await self._book_bulk(address, given_up)
            else:
                [(booked, due, holds, slot)] = await self._book([address], -1, [given_up])
            remaining = due - self._local_us()
            if remaining > 0:
                await self._sleep(remaining / 1_000_000)
            if not booked:
                continue  # it was held, or this address had to wait: ask again
            if remaining > 0 and await self._holds_known() > holds:
                continue  # a 429 came while this sender slept: its slot may fall in the hold
            # Late is measured after the question about holds too, which may have waited.
            late = self._local_us() - due
            if lane is Lane.BULK and late > self._late_us and late_again < MAX_LATE:
                # Woken too late (the process was busy): sent now, it would bunch up with the
                # sends of the next slots, and the provider would count more than its limit. A
                # reply goes anyway: booked again it would queue behind the bulk sends.
                late_again += 1
                given_up = str(slot)
                continue
            return

    async def _book_bulk(self, address: str, given_up: str) -> _Booking:
        """Book a bulk slot along with this process's other bulk senders: one call a batch."""
        asking: asyncio.Future[_Booking] = asyncio.get_running_loop().create_future()
        self._bulk_asking.append((address, given_up, asking))
        if self._bulk_booker is None or self._bulk_booker.done():
            self._bulk_booker = asyncio.create_task(self._book_bulk_batches())
        return await asking

    async def _book_bulk_batches(self) -> None:
        """Book slots for the bulk senders waiting, a batch a call, until none is left.

        Senders the schedule has no room for yet (booked up to the horizon) stay first in line;
        the booker sleeps until there is room for a batch of them, not one slot at a time,
        so a process at the provider's full rate makes tens of calls a second, not a thousand.
        """
        while True:
            # Senders cancelled while they waited (a shutdown, a timeout) need no slot.
            self._bulk_asking = [entry for entry in self._bulk_asking if not entry[2].done()]
            batch = self._bulk_asking[:_BATCH]
            if not batch:
                return
            try:
                answers = await self._book(
                    [a for a, _, _ in batch], self._bulk_horizon, [g for _, g, _ in batch]
                )
            except Exception as exc:  # each sender gets it; a RedisError makes it pace alone
                for entry in batch:
                    self._bulk_asking.remove(entry)
                    if not entry[2].done():
                        entry[2].set_exception(exc)
                continue
            room_in: int | None = None
            waiting = 0
            for entry, (booked, due, holds, slot) in zip(batch, answers, strict=True):
                if slot == _NO_ROOM:
                    room_in = due if room_in is None else room_in
                    waiting += 1
                    continue
                self._bulk_asking.remove(entry)
                if not entry[2].done():
                    entry[2].set_result((booked, due, holds, slot))
            if room_in is not None:
                # Until room for as many as wait (at most a batch, and a quarter of the horizon).
                more = max(0, min(waiting, self._bulk_chunk) - 1) * self._interval
                await self._sleep(max(0, room_in + more - self._local_us()) / 1_000_000)

    async def _book(
        self, addresses: list[str], horizon: int, given_up: list[str]
    ) -> list[_Booking]:
        """Book the next slots within ``horizon`` for ``addresses``, in order: per address
        (booked, when to send it or to ask again on this host's clock in microseconds, holds so
        far, the slot on Redis's clock, or ``_NO_ROOM`` if the schedule is booked up to the
        horizon).

        Not booked: the account is held or the address must wait; the sender sleeps that out,
        so the other bulk senders keep booking meanwhile.
        """
        async with self._calls:
            answer = await self._book_script(
                keys=[self._schedule, *(self.address_key(a) for a in addresses)],
                args=[
                    self._now(),
                    self._interval,
                    self._address_interval,
                    horizon,
                    _IDLE_MS,
                    *given_up,
                ],
            )
        local = self._local_us()
        holds, now = int(answer[0]), int(answer[1])
        offset = self._learn_offset(local - now)
        self._learn_holds(holds)
        bookings: list[_Booking] = []
        for i in range(2, len(answer), 2):
            what, value = int(answer[i]), int(answer[i + 1])
            if what == 1:
                bookings.append((True, value + offset, holds, value))
            elif what == -1:
                bookings.append((False, local + value, holds, 0))
            else:
                bookings.append((False, local + value, holds, _NO_ROOM))
        return bookings

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
        """The count of holds so far: as the last answer said, if it is fresh, else from Redis.

        Senders that wake together share one question: any asked since this one woke (less the
        freshness allowed) answers for it too, so a process at the full rate asks a few dozen
        times a second rather than once a message.
        """
        woke = self._monotonic()
        if woke - self._learnt_at <= _FRESH:
            return self._holds_seen
        if self._holds_asked is None or self._holds_asked_at < woke - _FRESH:
            self._holds_asked_at = woke
            self._holds_asked = asyncio.ensure_future(self._ask_holds())
        # Shielded: a sender cancelled while it waits does not cancel the others' answer.
        return await asyncio.shield(self._holds_asked)

    async def _ask_holds(self) -> int:
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
