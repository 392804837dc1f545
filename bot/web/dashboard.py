"""The public dashboard: GET /dashboard/wards.svg, the city's wards as one SVG.

The map is drawn from the gazetteer's ward polygons (``bot.web.ward_map``) the first time it is
asked for, then kept for the life of the process: the wards change only with a new gazetteer,
which comes with a new release, so browsers may keep it a day and revalidate it by its ETag.

Example::

    add_routes(app, services)   # GET /dashboard/wards.svg
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from bot.services import Services
from bot.web.ward_map import ward_map_svg
from forms_runtime.gazetteer import Gazetteer, default_gazetteer

__all__ = ["DASHBOARD_PATH", "WARDS_SVG_PATH", "add_routes"]

DASHBOARD_PATH = "/dashboard"
WARDS_SVG_PATH = f"{DASHBOARD_PATH}/wards.svg"
# A day in the browser, then a revalidation that the ETag answers with a 304.
_WARDS_CACHE = "public, max-age=86400"


class _WardsSvg:
    """The SVG and its ETag, made on first use (a fifth of a second) and kept."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        self._gazetteer = gazetteer
        self._body: bytes | None = None
        self._etag = ""

    def get(self) -> tuple[bytes, str]:
        if self._body is None:
            title = f"The wards of {self._gazetteer.city}"
            self._body = ward_map_svg(self._gazetteer.ward_outlines, title=title).encode()
            self._etag = '"' + hashlib.sha256(self._body).hexdigest()[:32] + '"'
        return self._body, self._etag


def add_routes(app: web.Application, services: Services) -> None:
    wards = _WardsSvg(default_gazetteer())

    async def wards_svg(request: web.Request) -> web.StreamResponse:
        body, etag = wards.get()
        headers = {"Cache-Control": _WARDS_CACHE, "ETag": etag}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="image/svg+xml", headers=headers)

    app.router.add_get(WARDS_SVG_PATH, wards_svg)
