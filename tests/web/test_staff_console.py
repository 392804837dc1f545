"""The staff console's pages over plain HTTP: every page is served with the Content Security
Policy and carries no inline script, handler or style (the policy would refuse them); the script
calls only routes the admin API has; the single sign-on slot shows only when it is set; the
broadcast and incident forms offer what this citybot has (languages, topics, channels, report
forms, WhatsApp templates) and the ward map they draw is served.

What the pages do is tested in a real browser (tests/web/test_staff_console_browser.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from bot.web.staff_api import ENDPOINTS
from bot.web.staff_console import (
    LANGUAGES,
    PAGES,
    SIGN_IN,
    environment,
    page_context,
    sso_url,
)
from bot.web.webchat import STATIC_DIR
from notifier.broadcasts import CHANNELS, TOPICS

ALL_PAGES = (SIGN_IN, *PAGES)
CONSOLE_JS = STATIC_DIR / "staff" / "console.js"


class _Inline(HTMLParser):
    """What a strict Content Security Policy would refuse: inline scripts, event handler
    attributes, style attributes and elements, javascript: links."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not names.get("src"):
                self.refused.append("<script> without src")
            else:
                self.scripts.append(str(names["src"]))
        if tag == "style":
            self.refused.append("<style>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.refused.append(f"<{tag} {name}=...>")
            if name in {"href", "src", "action"} and (value or "").lower().startswith("javas"):
                self.refused.append(f"<{tag} {name}={value}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.refused.append("text inside <script>")


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], tmp_path: Path) -> Any:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3")
    app = await create_app(settings, workers=False)
    return await aiohttp_client(app)


@pytest.mark.parametrize("page", ALL_PAGES, ids=lambda p: p.name)
async def test_every_page_is_served_with_the_policy_and_no_inline_script(
    client: Any, page: Any
) -> None:
    # A page about one thing (/staff/support/{id}) is asked for with an id.
    response = await client.get(re.sub(r"\{[^}]*\}", "1", page.url))
    assert response.status == 200
    assert response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["Cache-Control"] == "no-store"
    html = await response.text()
    checked = _Inline()
    checked.feed(html)
    assert checked.refused == []
    # console.js on every page; a page with a script of its own loads it after.
    own = {
        "analytics": ["/static/staff/analytics.js"],
        "incident-suggestions": ["/static/staff/suggestions.js"],
    }
    assert checked.scripts == ["/static/staff/console.js", *own.get(page.name, [])]
    # The sheet shared with the public dashboard first: the console's own adds to it.
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)">', html) == [
        "/static/shared/page.css",
        "/static/staff/console.css",
    ]
    assert '<html lang="en">' in html
    assert f'data-page="{page.name}"' in html


async def test_the_script_and_style_are_served_from_the_app(client: Any) -> None:
    for path, kind in [
        ("/static/staff/console.js", "application/javascript"),
        ("/static/staff/console.css", "text/css"),
        # What the console shares with the public dashboard, loaded before its own sheet.
        ("/static/shared/page.css", "text/css"),
    ]:
        response = await client.get(path)
        assert response.status == 200 and response.content_type == kind


async def test_bad_requests_to_the_console_are_4xx(client: Any) -> None:
    assert (await client.get("/staff", allow_redirects=False)).headers["Location"] == "/staff/"
    assert (await client.get("/staff/nothing-here")).status == 404
    assert (await client.post("/staff/accounts", data=b"x")).status == 405
    # The pages take no input: an odd query is ignored, not echoed.
    odd = await client.get("/staff/sign-in?next=%3Cscript%3E&x=%00")
    assert odd.status == 200 and "<script>" not in await odd.text()


def test_the_script_calls_only_routes_the_admin_api_has() -> None:
    script = CONSOLE_JS.read_text()
    calls = re.findall(r'api\(\s*"(GET|POST|PUT|PATCH|DELETE)",\s*"([^"]+)"', script)
    calls += [("GET", path) for path in re.findall(r'pager\(\s*"([^"]+)"', script)]
    assert len(calls) >= 12, calls
    served = [(e.method, re.sub(r"\{[^}]*\}.*", "", e.path)) for e in ENDPOINTS]
    for method, path in calls:
        path = path.split("?")[0]
        # "/accounts/" + id is the route "/accounts/{id}": compare the part before the id.
        assert (method, path) in served, (method, path)


async def test_single_sign_on_is_offered_only_when_configured(client: Any) -> None:
    assert sso_url(client.app[SERVICES_KEY]) is None
    html = await (await client.get("/staff/sign-in")).text()
    assert "Sign in with your city account" not in html

    template = environment(web.Application()).get_template("staff/sign-in.html")
    shown = template.render(page_context(SIGN_IN, sso="/api/v1/session/sso?next=%2Fstaff%2F"))
    assert (
        '<a class="button" href="/api/v1/session/sso?next=%2Fstaff%2F">'
        "Sign in with your city account</a>"
    ) in shown


def test_each_page_link_names_a_permission_the_api_checks() -> None:
    checked = {e.permission for e in ENDPOINTS if e.permission is not None}
    for page in PAGES:
        assert page.permission is None or page.permission in checked, page


def test_every_text_the_script_says_is_on_every_page() -> None:
    # The script reads its words from data-* attributes of #texts (translated on the server);
    # a missing one would show as "undefined".
    used = set(re.findall(r"\bT\.(\w+)", CONSOLE_JS.read_text()))
    assert len(used) >= 20, used
    base = (CONSOLE_JS.parent.parent.parent / "templates" / "staff" / "base.html").read_text()
    for name in sorted(used):
        attribute = "data-" + re.sub(r"[A-Z]", lambda m: "-" + m.group().lower(), name)
        assert f"{attribute}=" in base, name


async def test_the_broadcast_page_offers_every_language_topic_and_channel(client: Any) -> None:
    html = await (await client.get("/staff/broadcasts")).text()
    # A text per language, English the one required (the API's rule, said on the form).
    for code, name in LANGUAGES:
        assert f'id="compose-text-{code}"' in html and name in html
    assert re.search(r'<textarea id="compose-text-en"[^>]* required', html)
    assert not re.search(r'<textarea id="compose-text-af"[^>]* required', html)
    for topic in TOPICS:
        assert f'<option value="{topic}">' in html
    for channel in CHANNELS:
        assert f'name="channels" value="{channel}" checked' in html
    for target in ("wards", "places", "point", "everyone"):
        assert f'name="target" value="{target}"' in html
    # The script's words name the languages too (the preview's "no Afrikaans text" warning).
    assert 'data-lang-af="Afrikaans"' in html


async def test_the_incident_page_offers_the_report_forms_it_can_explain(client: Any) -> None:
    forms = client.app[SERVICES_KEY].turn_loop.forms
    html = await (await client.get("/staff/incidents")).text()
    offered = re.findall(r'name="services" value="([^"]+)"', html)
    assert offered == sorted(forms) and "no_water" in offered
    assert "No water supply" in html
    for status in ("open", "resolved", "cancelled"):
        assert f'<option value="{status}">' in html


async def test_the_configured_whatsapp_templates_are_offered(
    aiohttp_client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_WHATSAPP_TEMPLATES", '{"status_update": "HX2", "news": "HX1"}')
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="token",
        twilio_whatsapp_from="+27211234567",
    )
    client = await aiohttp_client(await create_app(settings, workers=False))
    html = await (await client.get("/staff/broadcasts")).text()
    datalist = re.search(r'<datalist id="whatsapp-templates">(.*?)</datalist>', html, re.S)
    assert datalist is not None
    assert re.findall(r'<option value="([^"]+)">', datalist.group(1)) == ["news", "status_update"]


async def test_the_ward_map_the_script_draws_is_served_by_the_app(client: Any) -> None:
    # The console inlines the public dashboard's ward drawing and marks wards by data-ward.
    [url] = re.findall(r'fetch\("([^"]+)"', CONSOLE_JS.read_text())
    response = await client.get(url)
    assert response.status == 200 and response.content_type == "image/svg+xml"
    svg = await response.text()
    assert '<path data-ward="9" ' in svg and "<script" not in svg
