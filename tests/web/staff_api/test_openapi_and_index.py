"""The OpenAPI document matches the routes mounted under /api/v1, both ways; /api lists every
API citybot serves; /open311/discovery.json is a GeoReport v2 discovery document."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from aiohttp import web

from bot.app import create_app
from bot.config import Settings
from bot.web.api_index import OPEN311_ROUTES, WEBHOOK_ROUTES
from bot.web.staff_api import API_PREFIX
from tests.web.staff_members import StaffHouse


def _api_routes(app: web.Application) -> set[tuple[str, str]]:
    """The routes of the /api/v1 sub-application (the staff console at /staff is another)."""
    found = set()
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource) and resource.canonical == API_PREFIX:
            info = resource.get_info()
            for route in info["app"].router.routes():
                path = re.sub(r"\{(\w+)[^}]*\}+", r"{\1}", route.resource.canonical)
                found.add((route.method, path))
    return found


async def test_every_api_route_is_in_the_document_and_nothing_else(tmp_path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/c.sqlite3", session_secret="x"
    )
    app = await create_app(settings, workers=False)
    from bot.web.staff_api import API_PREFIX, ENDPOINTS
    from bot.web.staff_api_openapi import document

    doc = document(ENDPOINTS, API_PREFIX)
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = {(m, p) for m, p in _api_routes(app) if m != "HEAD"}
    assert served == documented
    # The canonical paths aiohttp reports carry no regular expressions, like OpenAPI's.
    assert ("PATCH", "/api/v1/requests/{reference}") in served


async def test_the_document_is_served_and_says_who_may_call_what(house: StaffHouse) -> None:
    answer = await house.anonymous().call("GET", "/api/v1/openapi.json")
    assert answer.status == 200
    doc = answer.body
    assert doc["openapi"].startswith("3.1")
    get_accounts = doc["paths"]["/api/v1/accounts"]["get"]
    assert get_accounts["x-permission"] == "accounts.manage"
    assert {"401", "403"} <= set(get_accounts["responses"])
    create = doc["paths"]["/api/v1/accounts"]["post"]["requestBody"]["content"]
    schema = create["application/json"]["schema"]
    assert schema["additionalProperties"] is False and schema["required"] == ["email", "roles"]
    assert doc["paths"]["/api/v1/requests"]["get"]["x-scope"] == "ward"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.codes: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_code = tag == "code"
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")
        if tag in ("script", "link"):
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.codes.append(data)


async def test_the_api_page_lists_every_api_citybot_serves(house: StaffHouse, tmp_path) -> None:
    answer = await house.anonymous().call("GET", "/api")
    assert answer.status == 200
    page = _Page()
    page.feed(answer.body)
    assert "<html lang='en'>" in answer.body and "<h1>" in answer.body
    assert page.scripts == 0  # no CDN, nothing loaded from anywhere
    assert "/api/v1/openapi.json" in page.links and "/open311/discovery.json" in page.links
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/c.sqlite3", session_secret="x"
    )
    app = await create_app(settings, workers=False)
    served = {
        route.resource.canonical
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(("/webhooks/", "/open311/v2/"))
    }
    assert served <= set(page.codes), served - set(page.codes)
    assert {p for _, p, _ in (*OPEN311_ROUTES, *WEBHOOK_ROUTES)} <= served
    for method, path in _api_routes(app):
        if method != "HEAD":
            assert path in page.codes


async def test_the_georeport_discovery_document(house: StaffHouse) -> None:
    answer = await house.anonymous().call("GET", "/open311/discovery.json")
    assert answer.status == 200
    [endpoint] = answer.body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://localhost:8080/open311/v2"
    assert {"changeset", "contact", "key_service"} <= set(answer.body)
