"""Outbound pacing: stay under a provider's overall rate and its per-recipient rate.

Telegram allows about 30 messages a second overall and one a second to the same chat; Twilio
allows a number of messages a second per sending number. A ``Pacer`` hands out send slots in
order: each caller reserves the next free slot (no lock needed, the reservation happens before
the first ``await``) and sleeps until it. The notifier reuses it for broadcasts.

Example::

    pacer = Pacer(per_second=30, per_address_per_second=1)
    await pacer.wait("123456789")      # returns at once, or when a slot is free
    await channel.send(message)
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

__all__ = ["Pacer"]


class Pacer:
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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._rate = per_second
        self._address_interval = 1.0 / per_address_per_second if per_address_per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        # Slots before ``_frontier`` are all taken; ``_taken`` holds the ones after it.
        self._frontier = 0
        self._taken: set[int] = set()
        self._held_until = 0.0
        self._next_by_address: dict[str, float] = {}

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

    async def wait(self, address: str) -> None:
        delay = self.reserve(address)
        if delay > 0:
            await self._sleep(delay)

    def hold(self, seconds: float, address: str | None = None) -> None:
        """The provider said "retry after": no slot before then (for one address or for all)."""
        until = self._clock() + seconds
        if address is None:
            self._held_until = max(self._held_until, until)
        else:
            self._next_by_address[address] = max(self._next_by_address.get(address, 0.0), until)

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
