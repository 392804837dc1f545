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
import time
from collections.abc import Awaitable, Callable

__all__ = ["Pacer"]


class Pacer:
    """Reserve send slots at ``per_second`` overall and ``per_address_per_second`` per address."""

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
        self._interval = 1.0 / per_second
        self._address_interval = 1.0 / per_address_per_second if per_address_per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self._next_by_address: dict[str, float] = {}

    def reserve(self, address: str) -> float:
        """Claim the next slot for ``address``; return how many seconds to wait for it."""
        now = self._clock()
        slot = max(now, self._next_slot, self._next_by_address.get(address, 0.0))
        self._next_slot = slot + self._interval
        if self._address_interval:
            self._next_by_address[address] = slot + self._address_interval
            if len(self._next_by_address) > 10_000:
                self._forget_idle(now)
        return slot - now

    async def wait(self, address: str) -> None:
        delay = self.reserve(address)
        if delay > 0:
            await self._sleep(delay)

    def hold(self, seconds: float, address: str | None = None) -> None:
        """The provider said "retry after": no slot before then (for one address or for all)."""
        until = self._clock() + seconds
        if address is None:
            self._next_slot = max(self._next_slot, until)
        else:
            self._next_by_address[address] = max(self._next_by_address.get(address, 0.0), until)

    def _forget_idle(self, now: float) -> None:
        # Addresses whose next slot has passed need no entry: keeps memory flat under broadcasts.
        for address in [a for a, t in self._next_by_address.items() if t <= now]:
            del self._next_by_address[address]
