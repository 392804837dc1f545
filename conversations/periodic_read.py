"""A small table read at most every so often per process, by one query however many turns ask.

Some things every turn must know change rarely and may be a second stale: which conversations a
person holds, which incidents are open, whether any message is held at all. Each is read again
when its copy is older than ``every``. Under load dozens of turns find the copy stale at the same
moment; without sharing, each of them sent its own query (and opened its own transaction for it),
so the once-a-second read ran on most turns and cost more than the turns themselves. Here the
first turn starts the read and every other turn waits for that same read.

A turn reads through ``Turn.refreshed``, which says in which session the read runs.

Example::

    open_incidents = PeriodicRead(every=timedelta(seconds=30), initial=[])
    incidents = await open_incidents.get(now, read_open_incidents)
    incidents = await turn.refreshed(open_incidents, query_open_incidents)  # in a turn
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

__all__ = ["PeriodicRead"]

T = TypeVar("T")


class PeriodicRead(Generic[T]):
    def __init__(self, *, every: timedelta, initial: T) -> None:
        self.every = every
        self.value = initial
        self._read_at: datetime | None = None
        self._reading: asyncio.Future[None] | None = None

    def stale(self, now: datetime) -> bool:
        return self._read_at is None or now - self._read_at >= self.every

    def keep(self, value: T, now: datetime) -> None:
        """A value read by the caller itself at ``now``."""
        self.value = value
        self._read_at = now

    async def get(self, now: datetime, read: Callable[[], Awaitable[T]]) -> T:
        """The copy, read again first (by ``read``) when it is older than ``every`` at ``now``;
        a read already running is waited for instead."""
        if self.stale(now):
            if self._reading is None:
                self._reading = asyncio.ensure_future(self._refresh(now, read))
                # Its failure reaches every waiter; this marks it seen when none is left.
                self._reading.add_done_callback(_seen)
            # Shielded: a turn cancelled while waiting must not cancel the others' read.
            await asyncio.shield(self._reading)
        return self.value

    async def _refresh(self, now: datetime, read: Callable[[], Awaitable[T]]) -> None:
        try:
            self.keep(await read(), now)
        finally:
            self._reading = None


def _seen(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
