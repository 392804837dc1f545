"""The staff console under /staff/: page shells rendered on the server (Jinja2 through
aiohttp-jinja2) and one small script (static/staff/console.js) that does all the work through
the admin API at /api/v1, with the session cookie and the X-CSRF-Token header.

The console holds no power of its own: the pages are the same for everyone and say nothing
about any account, and what a person may see or do is whatever the API answers. The session
cookie stays limited to /api, so these pages never see it; the script asks GET /api/v1/session
who is signed in, shows only the links that person's permissions allow, and turns the API's
401 into the sign-in page and its 403 into a "you do not have access" page.

The pages' words go through gettext (the ``citybot_staff`` domain, English for now: with no
catalog the source texts are shown). The Content Security Policy of every HTML page
(``bot.web.middleware``) allows scripts and styles from this origin only, so the pages carry
no inline script, handler or style.

Example::

    add_routes(app, services)   # GET /staff/, /staff/sign-in, /staff/accounts, ...
"""

from __future__ import annotations

import gettext
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.services import Services
from bot.web.staff_api import API_PREFIX
from forms_runtime.model import Form
from notifier import broadcasts, incident_suggestions, incidents
from staff import support
from staff.analytics import DEPARTMENTS, OTHER_DEPARTMENT
from staff.roles import Permission, Role
from staff.service_requests import MAX_NOTES_LENGTH, STATUSES

__all__ = [
    "CONSOLE_PREFIX",
    "LANGUAGES",
    "PAGES",
    "SIGN_IN",
    "Offered",
    "Page",
    "add_routes",
    "console_text",
    "departments",
    "environment",
    "page_context",
    "sso_url",
]

CONSOLE_PREFIX = "/staff"
# The public figures the analytics page reads and links to, and the analysts' own export
# (bot.web.open_data).
OPEN_DATA_API = f"{API_PREFIX}/open-data"
ANALYST_EXPORT = f"{API_PREFIX}/analytics/requests.csv"
LOCALE_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "citybot_staff"
# The channels a resident may be waiting on, for the support queue's filter.
SUPPORT_CHANNELS = ("telegram", "sms", "whatsapp", "webchat")


def console_text(text: str) -> str:
    """Marks a console text for the staff catalog (``make locales``); translated when shown."""
    return text


@dataclass(frozen=True, slots=True)
class Page:
    """One console page: where it is, its title, and the permission its link needs (None:
    anyone signed in). The API enforces the permission; the link is only hidden without it."""

    name: str
    path: str
    title: str
    permission: Permission | None = None
    # In the navigation; a page about one thing (a conversation) is reached from its list.
    nav: bool = True

    @property
    def url(self) -> str:
        return CONSOLE_PREFIX + self.path


SIGN_IN = Page("sign-in", "/sign-in", console_text("Sign in"))
PAGES: tuple[Page, ...] = (
    Page("home", "/", console_text("Home")),
    Page("support", "/support", console_text("Support queue"), Permission.VIEW_QUEUE),
    Page(
        "support-overview",
        "/support/overview",
        console_text("Support overview"),
        Permission.MANAGE_QUEUE,
    ),
    Page(
        "support-conversation",
        "/support/{id:[0-9]+}",
        console_text("Conversation"),
        Permission.VIEW_QUEUE,
        nav=False,
    ),
    Page("requests", "/requests", console_text("Service requests"), Permission.VIEW_REQUESTS),
    Page("accounts", "/accounts", console_text("Accounts and roles"), Permission.MANAGE_ACCOUNTS),
    Page("tokens", "/tokens", console_text("API tokens"), Permission.MANAGE_TOKENS),
    Page("audit", "/audit", console_text("Audit log"), Permission.VIEW_AUDIT),
    Page("broadcasts", "/broadcasts", console_text("Broadcasts"), Permission.CREATE_BROADCASTS),
    Page("incidents", "/incidents", console_text("Known incidents"), Permission.DECLARE_INCIDENTS),
    Page(
        "incident-suggestions",
        "/incident-suggestions",
        console_text("Suggested incidents"),
        Permission.REVIEW_SUGGESTIONS,
    ),
    Page("analytics", "/analytics", console_text("Service performance"), Permission.VIEW_ANALYTICS),
    Page("password", "/password", console_text("Change my password")),
)


# A broadcast's life (storage.models.broadcasts), for the list's filter.
BROADCAST_STATES = (
    "draft",
    "awaiting_approval",
    "scheduled",
    "sending",
    "sent",
    "cancelled",
    "expired",
)
_LANGUAGE_NAMES = {
    "en": console_text("English"),
    "af": console_text("Afrikaans"),
    "zu": console_text("isiZulu"),
    "xh": console_text("isiXhosa"),
}
# The languages residents are written to, in the notifier's order (a language added there
# without a name here fails at import, not on a page).
LANGUAGES: tuple[tuple[str, str], ...] = tuple(
    (code, _LANGUAGE_NAMES[code]) for code in broadcasts.LOCALES
)


@dataclass(frozen=True, slots=True)
class Offered:
    """What this citybot offers the broadcast and incident forms: the report forms an incident
    can explain (id and title) and the WhatsApp templates configured; and the teams a support
    conversation may be transferred to. Read from the services once, at start-up: it says
    nothing about who is asking."""

    services: tuple[tuple[str, str], ...] = ()
    whatsapp_templates: tuple[str, ...] = ()
    # CITYBOT_SUPPORT_TEAMS, or the languages (a team may be a language) when none are set.
    support_teams: tuple[str, ...] = broadcasts.LOCALES

    @classmethod
    def of(cls, services: Services) -> Offered:
        forms = services.turn_loop.forms
        whatsapp = services.channels.get("whatsapp")
        templates: dict[str, str] = getattr(whatsapp, "templates", None) or {}
        return cls(
            services=tuple((form_id, forms[form_id].title) for form_id in sorted(forms)),
            whatsapp_templates=tuple(sorted(templates)),
            support_teams=services.settings.support_teams or broadcasts.LOCALES,
        )


def sso_url(services: Services) -> str | None:
    """Where "Sign in with your city account" leads (the OpenID Connect sign-in of
    ``bot.web.staff_sso``), or None when single sign-on is off."""
    return None if services.staff_sso is None else f"{API_PREFIX}/session/sso"


def _translations() -> gettext.NullTranslations:
    # English is the source language: without a catalog the texts are shown as written.
    return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=["en"], fallback=True)


def environment(app: web.Application) -> jinja2.Environment:
    """Set up ``app``'s template environment: the console's templates, autoescaped, with
    gettext."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("bot.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(_translations(), newstyle=True)  # type: ignore[attr-defined]
    return env


def departments(forms: Mapping[str, Form]) -> list[dict[str, Any]]:
    """The city's departments (``staff.analytics.DEPARTMENTS``, the ``department`` of the
    performance figures), each with its services by code and title: what the analytics page
    drills down through. A service no department answers is under "Other"."""
    titles = {form.service_code: form.title for form in forms.values()}
    listed = {code for codes in DEPARTMENTS.values() for code in codes}
    grouped = {name: list(codes) for name, codes in DEPARTMENTS.items()}
    others = sorted(code for code in titles if code not in listed)
    if others:
        grouped[OTHER_DEPARTMENT] = others
    return [
        {
            "name": name,
            "services": [{"code": code, "title": titles.get(code, code)} for code in codes],
        }
        for name, codes in grouped.items()
    ]


def page_context(
    page: Page,
    *,
    sso: str | None = None,
    offered: Offered | None = None,
    forms: Mapping[str, Form] | None = None,
) -> dict[str, Any]:
    """What a page's template is rendered with: nothing about who is asking."""
    offered = offered or Offered()
    return {
        "page": page,
        "pages": PAGES,
        "api": API_PREFIX,
        "console": CONSOLE_PREFIX,
        "roles": [r.value for r in Role],
        "statuses": STATUSES,
        "max_notes": MAX_NOTES_LENGTH,
        "support_channels": SUPPORT_CHANNELS,
        "outcomes": support.OUTCOMES,
        "max_reply": support.MAX_TEXT,
        "sso_url": sso,
        "languages": LANGUAGES,
        "max_text": broadcasts.MAX_TEXT,
        "topics": broadcasts.TOPICS,
        "broadcast_states": BROADCAST_STATES,
        "channels": broadcasts.CHANNELS,
        "incident_statuses": incidents.STATUSES,
        "suggestion_statuses": incident_suggestions.STATUSES,
        "report_services": offered.services,
        "whatsapp_templates": offered.whatsapp_templates,
        "support_teams": offered.support_teams,
        "departments": departments(forms or {}),
        "open_data": OPEN_DATA_API,
        "analyst_export": ANALYST_EXPORT,
    }


def _view(page: Page, services: Services) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    context = page_context(
        page,
        sso=sso_url(services) if page is SIGN_IN else None,
        offered=Offered.of(services),
        forms=services.turn_loop.forms,
    )

    async def view(request: web.Request) -> web.StreamResponse:
        response = aiohttp_jinja2.render_template(f"staff/{page.name}.html", request, context)
        # The shells hold nothing personal, but a shared office computer's back button should
        # not bring a page back after sign-out.
        response.headers["Cache-Control"] = "no-store"
        return response

    return view


async def _to_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(CONSOLE_PREFIX + "/")


def add_routes(app: web.Application, services: Services) -> None:
    """Mount the console at /staff, with its own template environment."""
    console = web.Application()
    environment(console)
    for page in (SIGN_IN, *PAGES):
        console.router.add_get(page.path, _view(page, services))
    app.router.add_get(CONSOLE_PREFIX, _to_home)
    app.add_subapp(CONSOLE_PREFIX, console)
