"""Outbound pacing: stay under a provider's overall rate and its per-recipient rate.

Telegram allows about 30 messages a second overall and one a second to the same chat; Twilio
allows a number of messages a second per sending number. Every send of a channel waits on the
channel's pacer first (``channels.retrying.send_with_retries``): replies, status updates and
broadcasts alike. Two pacers share one port, ``BasePacer``:

* ``Pacer`` (here) paces one process: the embedded default, where one process sends everything.
* ``RedisPacer`` (``channels.shared_pacing``) keeps the schedule in Redis, so every process that
  sends for the same provider account shares it: two workers send at the limit, not twice it.

Two lanes, so a broadcast never starves a conversation. A ``REPLY`` (a resident is waiting for
the bot's answer) books the next free send slot however far ahead it lies. A ``BULK`` send (status
updates, broadcasts) books a slot only while the booked schedule reaches less than
``bulk_horizon`` seconds ahead, and otherwise comes back when it has shrunk. Bulk senders thus keep
the provider busy at its full rate, but a reply arriving in the middle of a million-message
broadcast finds at most ``bulk_horizon`` seconds of bulk sends booked before it. (A fixed share of
the rate kept for replies would leave that share unused whenever nobody is talking to the bot.)

The spacing allows for network jitter. A provider counts messages as they reach it, in any
one-second window; sends spaced at exactly 1/limit put the limit's next message right on the
window's edge, where a few milliseconds of jitter push it inside (we measured 41 in a second at
40/s that way). So ``limit + 1`` sends span at least ``1 + jitter_allowance`` seconds: with the
default 10 ms, the pacer runs 1% under the named limit and absorbs up to 10 ms of jitter. For the
same reason a bulk sender that wakes later than that past its slot (its process was busy) books
again rather than bunch up with the next slots' sends (a reply goes: one more in a second, now and
then, beats a resident waiting behind a broadcast).

A provider's 429 ("retry after N seconds") holds the whole account: no send is booked before it
has passed, and senders that had booked a slot before the hold book again once they wake.

Example::

    pacer = Pacer(per_second=30, per_address_per_second=1)
    await pacer.wait("123456789")              # returns at once, or when a slot is free
    await channel.send(message)
    await pacer.wait("987654321", Lane.BULK)   # a status update: yields to replies
    await pacer.hold(5.0)                      # the provider said 429, retry after 5 s
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from enum import StrEnum

__all__ = [
    "DEFAULT_BULK_HORIZON",
    "DEFAULT_JITTER_ALLOWANCE",
    "MAX_LATE",
    "BasePacer",
    "Lane",
    "Pacer",
]

# How far ahead (seconds) bulk sends may book the schedule: long enough that the next bulk
# sender books before the schedule runs dry (so the provider stays busy), short enough that a
# reply waits no longer than this behind bulk sends.
DEFAULT_BULK_HORIZON = 0.25

# Seconds of network jitter the spacing absorbs (see the module's docstring).
DEFAULT_JITTER_ALLOWANCE = 0.01

# Times a sender woken later than the jitter allowance past its slot books again before it
# sends anyway (an overloaded process must still send something).
MAX_LATE = 3


class Lane(StrEnum):
    REPLY = "reply"  # a resident is waiting: book the next free slot
    BULK = "bulk"  # status updates and broadcasts: only book close ahead, replies go first


class BasePacer(ABC):
    """Hands out send slots for one provider account (a bot, a sending number)."""

    @abstractmethod
    async def wait(self, address: str, lane: Lane = Lane.REPLY) -> None:
        """Return when a message to ``address`` may be sent."""

    @abstractmethod
    async def hold(self, seconds: float, address: str | None = None) -> None:
        """The provider said "retry after": no send before then (for one address or for all)."""


class Pacer(BasePacer):
    """Reserve send slots at ``per_second`` overall and ``per_address_per_second`` per address.

    Time is cut into slots of ``1 / per_second``; each slot carries one message. A message waiting
    for its own address (one a second to the same chat) takes the first free slot from then on,
    so it never holds up messages to other residents that could go now.
    """

    def __init__(
        self,
        per_second: float,
        per_address_per_second: float | None = None,
        *,
        bulk_horizon: float = DEFAULT_BULK_HORIZON,
        jitter_allowance: float = DEFAULT_JITTER_ALLOWANCE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        stretch = 1.0 + jitter_allowance
        self._rate = per_second / stretch
        self._address_interval = stretch / per_address_per_second if per_address_per_second else 0.0
        self._bulk_horizon = bulk_horizon
        self._late = jitter_allowance
        self._clock = clock
        self._sleep = sleep
        # Slots before ``_frontier`` are all taken; ``_taken`` holds the ones after it.
        self._frontier = 0
        self._taken: set[int] = set()
        self._held_until = 0.0
        # Counts holds, so a sender that booked before one knows to book again.
        self._holds = 0
        self._next_by_address: dict[str, float] = {}
        self._bulk_turn = asyncio.Lock()

    def reserve(self, address: str) -> float:
        """Claim the next slot for ``address``; return how many seconds to wait for it."""
        now = self._clock()
        earliest = max(now, self._held_until, self._next_by_address.get(address, 0.0))
        slot = self._claim(_index(earliest, self._rate), _index(now, self._rate))
        start = max(slot / self._rate, earliest)
        if self._address_interval:
            self._next_by_address[address] = start + self._address_interval
            if len(self._next_by_address) > 10_000:
                self._forget_idle(now)
        return start - now

    async def wait(self, address: str, lane: Lane = Lane.REPLY) -> None:
        late_again = 0
        while True:
            if lane is Lane.BULK:
                # One bulk sender at a time looks for a slot: a thousand told "come back in
                # 2 ms" would otherwise all look again together.
                async with self._bulk_turn:
                    while (early := self._bulk_too_early()) > 0:
                        await self._sleep(early)
                    holds = self._holds
                    before = self._next_by_address.get(address)
                    delay = self.reserve(address)
            else:
                holds = self._holds
                before = self._next_by_address.get(address)
                delay = self.reserve(address)
            if delay <= 0:
                return
            mine = self._next_by_address.get(address)
            due = self._clock() + delay
            await self._sleep(delay)
            if lane is Lane.BULK and self._clock() - due > self._late and late_again < MAX_LATE:
                # Woken too late (the process was busy): sent now, it would bunch up with the
                # sends of the next slots, and the provider would count more than its limit. A
                # reply goes anyway: booked again it would queue behind the bulk sends.
                late_again += 1
                if self._next_by_address.get(address) == mine:
                    # The slot given up unused does not hold its address back.
                    if before is None:
                        self._next_by_address.pop(address, None)
                    else:
                        self._next_by_address[address] = before
                continue
            if self._holds == holds:
                return
            # A 429 came while this sender slept: its slot may fall inside the hold.

    async def hold(self, seconds: float, address: str | None = None) -> None:
        until = self._clock() + seconds
        if address is None:
            self._held_until = max(self._held_until, until)
            self._holds += 1
        else:
            self._next_by_address[address] = max(self._next_by_address.get(address, 0.0), until)

    def _bulk_too_early(self) -> float:
        """Seconds until a bulk send may book (0: now), without booking anything."""
        now = self._clock()
        if self._held_until > now:
            return self._held_until - now
        slot = max(_index(now, self._rate), self._frontier)
        while slot in self._taken:
            slot += 1
        return max(0.0, slot / self._rate - now - self._bulk_horizon)

    def _claim(self, earliest: int, now_index: int) -> int:
        if now_index > self._frontier:
            # Slots in the past can never be used again.
            self._frontier = now_index
            if self._taken:
                self._taken = {s for s in self._taken if s >= now_index}
        slot = max(earliest, self._frontier)
        while slot in self._taken:
            slot += 1
        self._taken.add(slot)
        while self._frontier in self._taken:
            self._taken.discard(self._frontier)
            self._frontier += 1
        return slot

    def _forget_idle(self, now: float) -> None:
        # Addresses whose next slot has passed need no entry: keeps memory flat under broadcasts.
        for address in [a for a, t in self._next_by_address.items() if t <= now]:
            del self._next_by_address[address]


def _index(moment: float, rate: float) -> int:
    # The first slot at or after ``moment`` (the epsilon absorbs float noise in moment * rate).
    return math.ceil(moment * rate - 1e-6)
