"""GET /api: the city's list of the APIs citybot serves, as a page for people; and the
GeoReport v2 discovery document at /open311/discovery.json, for machines.

The admin API's rows come from its route table (``staff_api.ENDPOINTS``); the Open311 and
webhook rows are listed here with what they are for, and a test checks that every such route
the app serves is on the page.

Example::

    add_routes(app, services)    # GET /api, GET /open311/discovery.json
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from bot.services import Services
from bot.web.open_data import PAGE_PATH as OPEN_DATA_PAGE
from bot.web.staff_api import API_PREFIX, ENDPOINTS
from bot.web.staff_api_openapi import openapi_path
from city.open311.server import PREFIX as OPEN311_PREFIX

__all__ = ["DISCOVERY_PATH", "OPEN311_ROUTES", "WEBHOOK_ROUTES", "add_routes"]

# Where GeoReport v2 puts it: beside the endpoints, as discovery.json (wiki.open311.org/Service_discovery).
DISCOVERY_PATH = "/open311/discovery.json"
_GEOREPORT_SPEC = "http://wiki.open311.org/GeoReport_v2"
# The version of the endpoint list below; change it when an endpoint changes.
_CHANGESET = "2026-12-04T00:00:00Z"

OPEN311_ROUTES: tuple[tuple[str, str, str], ...] = (
    (
        "GET",
        f"{OPEN311_PREFIX}/services.{{fmt}}",
        "the services (forms) a report can be filed for",
    ),
    ("GET", f"{OPEN311_PREFIX}/services/{{code}}.{{fmt}}", "one service's questions"),
    ("POST", f"{OPEN311_PREFIX}/requests.{{fmt}}", "file a service request"),
    ("GET", f"{OPEN311_PREFIX}/requests.{{fmt}}", "service requests, by id, status or dates"),
    ("GET", f"{OPEN311_PREFIX}/requests/{{id}}.{{fmt}}", "one service request"),
    ("GET", f"{OPEN311_PREFIX}/tokens/{{token}}.{{fmt}}", "the request id a token became"),
)
WEBHOOK_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/webhooks/telegram", "Telegram updates (checked with the webhook secret)"),
    ("POST", "/webhooks/twilio/sms", "Twilio SMS messages (checked with Twilio's signature)"),
    ("POST", "/webhooks/twilio/whatsapp", "Twilio WhatsApp messages (Twilio's signature)"),
    ("POST", "/webhooks/twilio/status", "Twilio delivery receipts (Twilio's signature)"),
    ("POST", "/webhooks/ussd/{secret}", "USSD gateway screens (the secret in the path)"),
)


def _table(caption: str, rows: list[tuple[str, str, str]]) -> str:
    body = "".join(
        f"<tr><td>{escape(m)}</td><td><code>{escape(p)}</code></td><td>{escape(w)}</td></tr>"
        for m, p, w in rows
    )
    return (
        f"<table><caption>{escape(caption)}</caption><thead><tr><th scope='col'>Method</th>"
        f"<th scope='col'>Path</th><th scope='col'>What it is for</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _page(services: Services) -> str:
    admin = [
        (
            e.method,
            openapi_path(API_PREFIX, e.path),
            e.summary + (f" (needs {e.permission.value})" if e.permission else ""),
        )
        for e in ENDPOINTS
        if e.tag != "open-data"
    ]
    public = [
        (e.method, openapi_path(API_PREFIX, e.path), e.summary)
        for e in ENDPOINTS
        if e.tag == "open-data"
    ]
    settings = services.settings
    if settings.builtin_open311:
        open311 = (
            "<p>citybot's built-in GeoReport v2 server; <code>{fmt}</code> is "
            "<code>json</code> or <code>xml</code>. Its discovery document is at "
            f"<a href='{DISCOVERY_PATH}'><code>{DISCOVERY_PATH}</code></a>.</p>"
            + _table("Open311 GeoReport v2", [*OPEN311_ROUTES])
        )
    else:
        open311 = (
            "<p>Reports are filed with the city's own GeoReport v2 server, "
            f"<code>{escape(settings.open311_endpoint or '')}</code>; its discovery document "
            f"is at <a href='{DISCOVERY_PATH}'><code>{DISCOVERY_PATH}</code></a>.</p>"
        )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>citybot APIs</title></head><body><main>"
        "<h1>The APIs citybot serves</h1>"
        "<h2 id='admin'>Admin API</h2>"
        "<p>For city staff and other city systems: staff sign-in, accounts, API tokens, the "
        "audit log and service requests. The full description is the OpenAPI 3.1 document "
        f"<a href='{API_PREFIX}/openapi.json'><code>{API_PREFIX}/openapi.json</code></a>. "
        "Sign in with a session, or send an API token as "
        "<code>Authorization: Bearer</code>.</p>"
        + _table("Admin API", admin)
        + "<h2 id='open-data'>Open data</h2>"
        "<p>For anyone, no sign-in: service requests without personal data and the city's "
        f"service performance, as JSON and CSV (CC BY 4.0). <a href='{OPEN_DATA_PAGE}'>What the "
        "data says, in plain words</a>.</p>"
        + _table("Open data", public)
        + "<h2 id='open311'>Open311 GeoReport v2</h2>"
        + open311
        + "<h2 id='webhooks'>Webhooks for providers</h2>"
        "<p>Called by the messaging providers, not by people; each request is checked with the "
        "provider's signature or secret.</p>"
        + _table("Provider webhooks", [*WEBHOOK_ROUTES])
        + "</main></body></html>"
    )


def _discovery(services: Services) -> dict[str, object]:
    settings = services.settings
    url = (
        settings.public_url + OPEN311_PREFIX
        if settings.builtin_open311
        else (settings.open311_endpoint or "").rstrip("/")
    )
    return {
        "changeset": _CHANGESET,
        "contact": f"See {settings.public_url}/api",
        "key_service": "Ask the city for an API key" if settings.open311_key else "",
        "endpoints": [
            {
                "specification": _GEOREPORT_SPEC,
                "url": url,
                "changeset": _CHANGESET,
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }


def add_routes(app: web.Application, services: Services) -> None:
    page = _page(services)

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(_discovery(services))

    app.router.add_get("/api", index)
    app.router.add_get(DISCOVERY_PATH, discovery)
