"""The workers that close the loop: the filer and the status poller, in every worker process.

Imported through ``bot.app.WORKER_MODULES``; registers

* ``filer``: files every stored report with the city (``bot.filer.Filer``) and tells the
  resident the city's number;
* ``status_poller``: follows every filed request (``notifier.status_poller.StatusPoller``) and
  tells the resident each change, in their language, on the channel they reported on.

Both file and poll through ``bot.open311.wiring.backend_from_settings`` (the city's endpoint or
the built-in server over HTTP), speak to residents through ``notifier.delivery.ResidentDelivery``
and count into the app's metrics registry (``/metrics``). Their pace comes from ``Settings``
(``CITYBOT_FILER_IDLE_SECONDS``, ``CITYBOT_FILER_RETRY_DELAYS``, ``CITYBOT_STATUS_POLL_SECONDS``,
``CITYBOT_QUIET_HOURS``, ``CITYBOT_TIMEZONE``).

Example::

    await run_filer(services)            # runs until cancelled, as ``citybot serve`` does
"""

from __future__ import annotations

import asyncio
import weakref

from bot.app import register_worker
from bot.config import Settings
from bot.filer import Filer, FilerSettings
from bot.media_links import MediaLinks
from bot.open311.wiring import backend_from_settings
from bot.services import Services
from bot.web.webhooks import build_channels
from channels.base import BaseChannel
from notifier.delivery import ResidentDelivery
from notifier.status_poller import PollerSettings, QuietHours, StatusPoller

__all__ = ["ensure_channels", "poller_settings", "run_filer", "run_status_poller"]

# One Filer per Services: its counters live in the app's registry, which refuses a second set
# when the supervisor restarts a crashed worker.
_FILERS: weakref.WeakKeyDictionary[Services, Filer] = weakref.WeakKeyDictionary()


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


def _filer(services: Services) -> Filer:
    filer = _FILERS.get(services)
    if filer is None:
        settings = services.settings
        filer = Filer(
            services.session_factory,
            backend_from_settings(settings),
            services.turn_loop.forms,
            send=ResidentDelivery(services.session_factory, services.channels),
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
        send=ResidentDelivery(services.session_factory, services.channels),
        settings=poller_settings(services.settings),
    )
    try:
        await poller.run_forever(asyncio.Event())
    finally:
        await backend.close()


register_worker("filer", run_filer)
register_worker("status_poller", run_status_poller)
