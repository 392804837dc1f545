"""The public dashboard: GET /dashboard, and GET /dashboard/wards.svg (the city's wards).

``/dashboard`` is a page shell rendered on the server in the reader's language (``?lang=``,
else the browser's ``Accept-Language``; English, Afrikaans, isiZulu, isiXhosa, from the
``citybot_dashboard`` gettext catalogs, see ``bot.web.page_translations``) and one script
(static/dashboard/dashboard.js) that reads the public performance figures
(``/api/v1/open-data/performance``) and draws them with the vendored Chart.js
(static/vendor/chartjs). Every chart has its table and its CSV link; the page holds no inline
script or style, so the Content Security Policy of ``bot.web.middleware`` applies as it is.

The ward map is drawn from the gazetteer's ward polygons (``bot.web.ward_map``) the first time
it is asked for, then kept for the life of the process: the wards change only with a new
gazetteer, which comes with a new release, so browsers may keep it a day and revalidate it by
its ETag.

Example::

    add_routes(app, services)   # GET /dashboard, GET /dashboard/wards.svg
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from bot.services import Services
from bot.web.page_translations import page_locale, translations
from bot.web.staff_api import API_PREFIX
from bot.web.ward_map import ward_map_svg
from forms_runtime.gazetteer import Gazetteer, default_gazetteer
from forms_runtime.i18n import LANGUAGE_NAMES, LOCALES, tr
from forms_runtime.model import Form

__all__ = [
    "DASHBOARD_PATH",
    "DOMAIN",
    "GROUPS",
    "PERFORMANCE_PATH",
    "PERIODS",
    "WARDS_SVG_PATH",
    "add_routes",
    "render_dashboard",
]

DASHBOARD_PATH = "/dashboard"
WARDS_SVG_PATH = f"{DASHBOARD_PATH}/wards.svg"
PERFORMANCE_PATH = f"{API_PREFIX}/open-data/performance"
TRANSPORT_PATH = f"{API_PREFIX}/open-data/transport"
OPEN_DATA_PATH = "/open-data"
DOMAIN = "citybot_dashboard"
PERIODS = ("month", "week")
GROUPS = ("area_type", "service", "ward")
# A day in the browser, then a revalidation that the ETag answers with a 304.
_WARDS_CACHE = "public, max-age=86400"
# The shell holds no figures (the script fetches them), so a few minutes is plenty.
_PAGE_CACHE = "public, max-age=300"


@dataclass(frozen=True, slots=True)
class _Language:
    code: str
    name: str
    url: str


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


@cache
def _environment(locale: str) -> jinja2.Environment:
    # One environment per language: its gettext is that language's catalog.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bot.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    # Old-style: the texts carry "90%" and {placeholders} for the script, never %-formatting.
    env.install_gettext_translations(translations(DOMAIN, locale), newstyle=False)  # type: ignore[attr-defined]
    return env


def _service_names(forms: Mapping[str, Form], locale: str) -> dict[str, str]:
    # The figures name a service by its form id or its Open311 code; the reader sees its title.
    names: dict[str, str] = {}
    for form in forms.values():
        title = tr(locale, form.title)
        names[form.id] = title
        names[form.service_code] = title
    return names


def _csv_url(group: str, period: str, part: str = "rows") -> str:
    query = {"group": group, "period": period, "format": "csv"}
    if part != "rows":
        query["part"] = part  # the disparities, not the figures by group
    return f"{PERFORMANCE_PATH}?{urlencode(query)}"


def render_dashboard(locale: str, period: str, forms: Mapping[str, Form]) -> str:
    """The page in ``locale`` for figures by ``period`` ("month" or "week")."""
    languages = [
        _Language(code, LANGUAGE_NAMES[code], f"{DASHBOARD_PATH}?{urlencode({'lang': code})}")
        for code in LOCALES
    ]
    if period != PERIODS[0]:
        languages = [
            _Language(lang.code, lang.name, f"{lang.url}&{urlencode({'period': period})}")
            for lang in languages
        ]
    return (
        _environment(locale)
        .get_template("dashboard/dashboard.html")
        .render(
            locale=locale,
            period=period,
            languages=languages,
            dashboard_url=DASHBOARD_PATH,
            performance_url=PERFORMANCE_PATH,
            transport_url=TRANSPORT_PATH,
            wards_svg_url=WARDS_SVG_PATH,
            open_data_url=OPEN_DATA_PATH,
            csv={group: _csv_url(group, period) for group in GROUPS},
            disparity_csv={group: _csv_url(group, period, "disparity") for group in GROUPS},
            service_names=_service_names(forms, locale),
        )
    )


def add_routes(app: web.Application, services: Services) -> None:
    wards = _WardsSvg(default_gazetteer())
    forms = services.turn_loop.forms

    async def dashboard(request: web.Request) -> web.StreamResponse:
        locale = page_locale(request.query.get("lang"), request.headers.get("Accept-Language"))
        period = request.query.get("period", PERIODS[0])
        if period not in PERIODS:
            period = PERIODS[0]
        response = web.Response(
            text=render_dashboard(locale, period, forms), content_type="text/html"
        )
        response.headers["Cache-Control"] = _PAGE_CACHE
        response.headers["Vary"] = "Accept-Language"
        response.headers["Content-Language"] = locale
        return response

    async def wards_svg(request: web.Request) -> web.StreamResponse:
        body, etag = wards.get()
        headers = {"Cache-Control": _WARDS_CACHE, "ETag": etag}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="image/svg+xml", headers=headers)

    app.router.add_get(DASHBOARD_PATH, dashboard)
    app.router.add_get(WARDS_SVG_PATH, wards_svg)
