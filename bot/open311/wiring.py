"""Open311 in the running app: the built-in server's routes, and the client the workers file with.

``add_routes`` is a route provider (``bot.app.ROUTE_PROVIDERS``). With ``OPEN311_ENDPOINT``
unset it mounts the built-in GeoReport v2 server under ``/open311/v2/`` and its staff page at
``/open311/staff`` (on with ``CITYBOT_STAFF_TOKEN``); with an endpoint set the city's own server
is the back end and nothing is mounted. It also gives the turn loop its ``city_status`` port, so
"status CT-XXXXXX" answers from the back end once a report is filed.

``backend_from_settings`` builds the ``Open311Backend`` the filer and the status poller use.
Without ``OPEN311_ENDPOINT`` it is the app's own built-in server, reached over real HTTP exactly
as a city's server would be (``builtin_endpoint``).

Example::

    backend = backend_from_settings(Settings.from_env())
    backend.endpoint      # 'http://127.0.0.1:8080/open311/v2' (built-in) or OPEN311_ENDPOINT
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.config import Settings
from bot.open311.client import CityBackend, Open311Backend
from bot.open311.errors import Open311Error
from bot.open311.server import PREFIX, add_open311_routes
from bot.services import Services
from notifier.status_poller import status_message

__all__ = [
    "CITY_STATUS_TIMEOUT",
    "add_routes",
    "backend_from_settings",
    "builtin_endpoint",
    "city_status_lookup",
]

log = logging.getLogger("citybot.open311")

# A resident asking "status CT-..." waits at most this long for the city before the local answer.
CITY_STATUS_TIMEOUT = 3.0
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def builtin_endpoint(settings: Settings) -> str:
    """Where the built-in server answers: this deployment's own listener.

    ``CITYBOT_HOST``/``CITYBOT_PORT`` name it (a wildcard host is reached on 127.0.0.1), so a
    process talks to itself or to the ``serve`` beside it without leaving the machine; the
    public URL is only used when the port is 0 (chosen at random, so unknown here). Workers on
    other machines set ``OPEN311_ENDPOINT`` to ``<public URL>/open311/v2`` instead.
    """
    if settings.port == 0:
        return settings.public_url.rstrip("/") + PREFIX
    host = "127.0.0.1" if settings.host in _WILDCARD_HOSTS else settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}{PREFIX}"


def backend_from_settings(settings: Settings) -> Open311Backend:
    """The GeoReport v2 client for ``OPEN311_ENDPOINT``, or for the built-in server."""
    endpoint = settings.open311_endpoint or builtin_endpoint(settings)
    return Open311Backend(
        endpoint,
        api_key=settings.open311_api_key,
        jurisdiction_id=settings.open311_jurisdiction_id,
    )


def city_status_lookup(
    backend: CityBackend, timeout: float = CITY_STATUS_TIMEOUT
) -> Callable[[str, str, str], Awaitable[str | None]]:
    """The turn loop's ``city_status`` port: what the city says now about one filed report.

    ``lookup(reference, service_request_id, locale)`` is the status, the city's notes and the
    expected date in the resident's language, or ``None`` when the city cannot be asked right
    now (the turn loop then answers from its own table).
    """

    async def lookup(reference: str, service_request_id: str, locale: str) -> str | None:
        try:
            found = await asyncio.wait_for(backend.request(service_request_id), timeout)
        except (Open311Error, TimeoutError) as exc:
            log.warning("status from the city unavailable: %s", exc)
            return None
        except Exception:  # the port promises an answer or None, never a failed turn
            log.exception("status from the city failed")
            return None
        if found is None:
            return None
        return status_message(
            locale,
            reference,
            found.service_request_id,
            found.status,
            found.status_notes,
            found.expected_datetime,
        )

    return lookup


def add_routes(app: web.Application, services: Services) -> None:
    """Mount the built-in server (when no city endpoint is set) and wire "status REF"."""
    settings = services.settings
    if settings.builtin_open311:
        add_open311_routes(
            app,
            services.session_factory,
            services.turn_loop.forms,
            # "" switches a check off explicitly, rather than reading the environment again.
            api_key=settings.open311_api_key or "",
            staff_token=settings.staff_token or "",
        )
    backend = backend_from_settings(settings)
    # The turn loop is built before routes; it takes the port here, where the backend is known.
    services.turn_loop.city_status = city_status_lookup(backend)

    async def close_backend(app: web.Application) -> None:
        await backend.close()

    app.on_cleanup.append(close_backend)
