"""How a citybot command starts and stops: settings read once, SIGTERM and SIGINT as "stop".

A wrong setting is the operator's to fix, so it is said in one line on stderr and the command
exits with status 2, never with a traceback. A long-running command waits on the event that the
signals set, then finishes the work in flight.

Example::

    settings = settings_or_none("citybot worker")
    if settings is None:
        return 2
    ...
    stop = stop_on_signals()      # inside the running event loop
    await stop.wait()
"""

from __future__ import annotations

import asyncio
import signal
import sys

from bot.config import ConfigError, Settings

__all__ = ["settings_or_none", "stop_on_signals"]


def settings_or_none(command: str) -> Settings | None:
    """Settings from the environment, or None once ``command: <what is wrong>`` is on stderr."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return None


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM (the orchestrator) and SIGINT (Ctrl-C) set; call it in the loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
