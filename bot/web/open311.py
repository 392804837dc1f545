"""The built-in GeoReport v2 server (``city.open311.server``), mounted at ``/open311/v2/`` where no
city endpoint is set. Staff change requests' status through the admin API (``bot.web.staff_api``).

With ``OPEN311_ENDPOINT`` set the city's own server is the back end and nothing is mounted.

Example::

    add_routes(app, services)    # GET /open311/v2/services.json ...
"""

from __future__ import annotations

from aiohttp import web

from bot.services import Services
from city.open311.server import add_open311_routes

__all__ = ["add_routes"]


def add_routes(app: web.Application, services: Services) -> None:
    settings = services.settings
    if settings.builtin_open311:
        add_open311_routes(
            app,
            services.session_factory,
            services.turn_loop.forms,
            api_key=settings.open311_key or "",
            public_details=settings.open311_public_details,
        )
