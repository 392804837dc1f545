"""How a citybot command starts and stops: settings read once, SIGTERM and SIGINT as "stop".

A wrong setting is the operator's to fix, so it is said in one line on stderr and the command
exits with status 2, never with a traceback. A long-running command waits on the event that the
signals set, then finishes the work in flight within the grace period
(``CITYBOT_SHUTDOWN_TIMEOUT``): ``stop_within`` ends the process when the grace period is over
or at a second signal, whatever is still running. That is safe because nothing unfinished was
marked done: a turn's dedupe marker is committed with the turn, a reply is acknowledged on its
stream only once sent, a report is marked filed only once the city answered.

Example::

    settings = settings_or_none("citybot worker")
    if settings is None:
        return 2
    ...
    stop = stop_on_signals()      # inside the running event loop
    await stop.wait()
    await stop_within(finish_work(), stop, settings.shutdown_timeout, what_is_left)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from bot.channel_setup import check_channel_env
from bot.config import ConfigError, Settings
from bot.preflight import database_problem, startup_warnings

__all__ = ["STOP_MARGIN", "ready_to_start", "settings_or_none", "stop_on_signals", "stop_within"]

log = logging.getLogger("citybot.lifecycle")

# Past the grace period, the seconds left to close pools and flush logs before the process ends
# anyway: an orchestrator's grace period (Kubernetes: 30 s) should exceed the sum.
STOP_MARGIN = 1.5


def settings_or_none(command: str) -> Settings | None:
    """Settings from the environment, or None once ``command: <what is wrong>`` is on stderr."""
    try:
        settings = Settings.from_env()
        check_channel_env(os.environ)
    except ConfigError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return None
    return settings


def ready_to_start(command: str, settings: Settings) -> bool:
    """Log what the settings silently break (logging configured), then ask the database: False
    once ``command: <why> -> <fix>`` is on stderr, so "cannot reach the database" is said as
    that, before anything else can fail on it with a traceback."""
    for finding in startup_warnings(settings, os.environ):
        log.warning("%s -> %s", finding.detail, finding.fix)
    problem = asyncio.run(database_problem(settings.database_url))
    if problem is None:
        return True
    print(f"{command}: {problem.detail} -> {problem.fix}", file=sys.stderr)
    return False


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM (the orchestrator) and SIGINT (Ctrl-C) set; call it in the loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def stop_within(
    stopping: Awaitable[None], stop: asyncio.Event, grace: float, left: Callable[[], str]
) -> None:
    """Await ``stopping`` (the graceful stop, started once ``stop`` was set) for at most
    ``grace`` + ``STOP_MARGIN`` seconds, or until ``stop`` is set again (a second SIGTERM or
    Ctrl-C); past that, log ``left()`` (what was handed back) and end the process at once.

    The process ends with ``os._exit``: a task that ignores its cancellation would otherwise
    hold the event loop's own teardown (``asyncio.run`` waits for every task) for good.
    """
    stop.clear()
    graceful = asyncio.ensure_future(stopping)
    again = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait(
        {graceful, again}, timeout=grace + STOP_MARGIN, return_when=asyncio.FIRST_COMPLETED
    )
    if graceful in done:
        again.cancel()
        graceful.result()  # its failure, if any, is the caller's
        return
    why = "a second signal" if again in done else f"the grace period of {grace:g} s is over"
    log.warning("stopping now (%s): %s", why, left())
    _exit_now(1)


def _exit_now(status: int) -> None:
    """End the process without running the event loop's teardown, logs and output flushed."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
