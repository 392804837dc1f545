"""The event loop the long-running commands run on: uvloop where it is installed, else asyncio's.

uvloop (libuv, in C) runs the same asyncio code with much less overhead per callback, socket read
and write, which is most of what a webhook costs besides the turn itself. It is a dependency on
Linux and macOS; ``CITYBOT_EVENT_LOOP=asyncio`` turns it off (to compare, or to debug with
asyncio's own loop).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when it is wanted and installed; None means asyncio's default."""
    if os.environ.get("CITYBOT_EVENT_LOOP", "auto").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop ``loop_factory`` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
