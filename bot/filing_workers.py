"""The workers that close the loop: filer, status poller and dispatcher, in every worker process.

Imported through ``bot.app.WORKER_MODULES``; registers

* ``filer``: files every stored report with the city (``bot.filer.Filer``) and queues the
  resident's "the city's number is ..." message;
* ``status_poller``: follows every filed request (``notifier.status_poller.StatusPoller``) and
  queues a message for each change, in the resident's language;
* ``dispatcher``: sends the queued messages (``notifier.dispatcher.NotificationDispatcher``)
  through ``notifier.delivery.ResidentDelivery``, on the channel the resident reported on.

The filer and the poller talk to ``bot.open311.wiring.backend_from_settings`` (the city's
endpoint or the built-in server over HTTP); all three count into the app's metrics registry
(``/metrics``). Their pace comes from ``Settings`` (``CITYBOT_FILER_IDLE_SECONDS``,
``CITYBOT_FILER_RETRY_DELAYS``, ``CITYBOT_STATUS_POLL_SECONDS``, ``CITYBOT_DISPATCH_IDLE_SECONDS``,
``CITYBOT_DISPATCH_MAX_ATTEMPTS``, ``CITYBOT_QUIET_HOURS``, ``CITYBOT_TIMEZONE``).

Example::

    await run_filer(services)            # runs until cancelled, as ``citybot serve`` does
"""

from __future__ import annotations

import asyncio
import weakref

from bot.app import register_worker
from bot.channel_setup import build_channels
from bot.config import Settings
from bot.filer import Filer, FilerSettings
from bot.media_links import MediaLinks
from bot.open311.wiring import backend_from_settings
from bot.services import Services
from channels.base import BaseChannel
from notifier.delivery import ResidentDelivery
from notifier.dispatcher import DispatchSettings, NotificationDispatcher
from notifier.status_poller import PollerSettings, QuietHours, StatusPoller

__all__ = [
    "dispatch_settings",
    "ensure_channels",
    "poller_settings",
    "run_dispatcher",
    "run_filer",
    "run_status_poller",
]

# One Filer and one dispatcher per Services: their counters live in the app's registry, which
# refuses a second set when the supervisor restarts a crashed worker.
_FILERS: weakref.WeakKeyDictionary[Services, Filer] = weakref.WeakKeyDictionary()
_DISPATCHERS: weakref.WeakKeyDictionary[Services, NotificationDispatcher] = (
    weakref.WeakKeyDictionary()
)


async def ensure_channels(services: Services) -> None:
    """Make sure the provider channels exist in this process.

    ``citybot serve`` builds them with the webhook routes; ``citybot worker`` serves no routes,
    so the first worker that needs them builds them here.
    """
    built = build_channels(services.settings, services.session_factory)
    spare: list[BaseChannel] = []
    for name, channel in built.items():
        if name in services.channels:
            spare.append(channel)
        else:
            services.channels[name] = channel
    for channel in spare:
        await channel.close()


def poller_settings(settings: Settings) -> PollerSettings:
    """The poller's interval and quiet hours (in the city's time zone) from ``Settings``."""
    quiet = None
    if settings.quiet_hours is not None:
        start, end = settings.quiet_hours
        quiet = QuietHours(start=start, end=end, zone=settings.city_timezone)
    return PollerSettings(quiet_hours=quiet, interval_seconds=settings.status_poll_seconds)


def dispatch_settings(settings: Settings) -> DispatchSettings:
    """The dispatcher's pace, attempts and quiet hours (the poller's) from ``Settings``."""
    return DispatchSettings(
        quiet_hours=poller_settings(settings).quiet_hours,
        idle_seconds=settings.dispatch_idle_seconds,
        max_attempts=settings.dispatch_max_attempts,
    )


def _filer(services: Services) -> Filer:
    filer = _FILERS.get(services)
    if filer is None:
        settings = services.settings
        filer = Filer(
            services.session_factory,
            backend_from_settings(settings),
            services.turn_loop.forms,
            settings=FilerSettings(
                retry_delays=settings.filer_retry_delays,
                alert_after=settings.filer_alert_after,
                idle_seconds=settings.filer_idle_seconds,
            ),
            registry=services.metrics.registry,
            media_links=MediaLinks.from_settings(settings),
        )
        _FILERS[services] = filer
    return filer


async def run_filer(services: Services) -> None:
    await ensure_channels(services)
    filer = _filer(services)
    try:
        # The Event is never set: the supervisor stops the worker by cancelling it.
        await filer.run_forever(asyncio.Event())
    finally:
        await filer.backend.close()


async def run_status_poller(services: Services) -> None:
    await ensure_channels(services)
    backend = backend_from_settings(services.settings)
    poller = StatusPoller(
        services.session_factory,
        backend,
        settings=poller_settings(services.settings),
    )
    try:
        await poller.run_forever(asyncio.Event())
    finally:
        await backend.close()


def _dispatcher(services: Services) -> NotificationDispatcher:
    dispatcher = _DISPATCHERS.get(services)
    if dispatcher is None:
        dispatcher = NotificationDispatcher(
            services.session_factory,
            ResidentDelivery(services.session_factory, services.channels),
            settings=dispatch_settings(services.settings),
            registry=services.metrics.registry,
        )
        _DISPATCHERS[services] = dispatcher
    return dispatcher


async def run_dispatcher(services: Services) -> None:
    await ensure_channels(services)
    await _dispatcher(services).run_forever(asyncio.Event())


register_worker("filer", run_filer)
register_worker("status_poller", run_status_poller)
register_worker("dispatcher", run_dispatcher)
