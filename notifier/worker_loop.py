"""The loop every background worker runs: a cycle, then a rest when there was nothing to do.

A failed cycle (a database or back-end hiccup) is logged and the worker carries on: one bad
moment must never end the filer, the poller or the dispatcher.

Example::

    await repeat_until_stopped(filer.run_once, stop, idle_seconds=1.0, what="filer")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["repeat_until_stopped"]

log = logging.getLogger("citybot.workers")


async def repeat_until_stopped(
    cycle: Callable[[], Awaitable[int]], stop: asyncio.Event, *, idle_seconds: float, what: str
) -> None:
    """Run ``cycle`` until ``stop`` is set; rest ``idle_seconds`` whenever it handled nothing."""
    while not stop.is_set():
        try:
            handled = await cycle()
        except Exception:
            log.exception("%s cycle failed", what)
            handled = 0
        if handled == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), idle_seconds)
