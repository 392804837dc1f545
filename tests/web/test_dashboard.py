"""GET /dashboard: the page shell in each of its four languages, chosen by ``?lang=`` or the
browser, safe under the Content Security Policy (no inline script or style), every chart with a
table and a CSV link; and its gettext catalogs complete and current.

The charts drawn in a real browser, and axe-core's audit, are in test_dashboard_browser.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from bot.web.dashboard import DASHBOARD_PATH, DOMAIN
from bot.web.page_translations import LOCALE_DIR, page_locale, translations

ROOT = Path(__file__).resolve().parent.parent.parent
TRANSLATED = ("af", "zu", "xh")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
HEADINGS = {
    "en": "How long the city takes to fix what residents report",
    "af": "Hoe lank die stad neem om reg te maak wat inwoners rapporteer",
    "zu": "Isikhathi umasipala asithathayo ukulungisa lokho izakhamuzi ezikubikayo",
    "xh": "Ixesha elithathwa sisixeko ukulungisa oko kuxelwa ngabahlali",
}


class _Page(HTMLParser):
    """What the checks need from the page: its tags with their attributes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def of(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]


async def _page(client: TestClient[Any, Any], query: str = "", **headers: str) -> tuple[Any, str]:
    response = await client.get(DASHBOARD_PATH + query, headers=headers)
    assert response.status == 200
    return response, await response.text()


@pytest.mark.parametrize("locale", ["en", *TRANSLATED])
async def test_the_page_speaks_each_language(client: TestClient[Any, Any], locale: str) -> None:
    response, html = await _page(client, f"?lang={locale}")
    assert f'<html lang="{locale}">' in html
    assert response.headers["Content-Language"] == locale
    assert f"<h1>{HEADINGS[locale]}</h1>" in html
    page = _Page()
    page.feed(html)
    # The switcher offers every language, named in itself, the current one marked.
    switcher = [a for a in page.of("a") if a.get("hreflang")]
    assert [a["hreflang"] for a in switcher] == ["en", "af", "zu", "xh"]
    assert [a["href"] for a in switcher if a.get("aria-current") == "page"] == [
        f"{DASHBOARD_PATH}?lang={locale}"
    ]
    for name in ("English", "Afrikaans", "isiZulu", "isiXhosa"):
        assert f">{name}</a>" in html
    if locale != "en":
        assert "Time to close, by ward" not in html  # no English left behind


async def test_the_browser_language_is_used_unless_one_is_chosen(
    client: TestClient[Any, Any],
) -> None:
    response, html = await _page(client, **{"Accept-Language": "fr-FR, zu-ZA;q=0.8, en;q=0.5"})
    assert '<html lang="zu">' in html
    assert response.headers["Vary"] == "Accept-Language"
    _, html = await _page(client, "?lang=af", **{"Accept-Language": "zu"})
    assert '<html lang="af">' in html
    _, html = await _page(client, "?lang=de")
    assert '<html lang="en">' in html


def test_page_locale_weighs_the_preferences() -> None:
    assert page_locale(None, "en;q=0.4, xh;q=0.9, af") == "af"
    assert page_locale(None, "xh;q=0.9, zu;q=0.9") == "xh"  # a tie keeps the browser's order
    assert page_locale(None, "zu;q=0, de") == "en"
    assert page_locale(None, "zu;q=x, af") == "af"
    assert page_locale(None, None) == "en"


async def test_the_period_is_chosen_on_the_page(client: TestClient[Any, Any]) -> None:
    _, html = await _page(client, "?lang=xh&period=week")
    assert 'data-period="week"' in html
    assert "period=week&amp;format=csv" in html
    assert 'href="/dashboard?lang=af&amp;period=week"' in html  # the switcher keeps it
    _, html = await _page(client, "?period=year")
    assert 'data-period="month"' in html


async def test_no_inline_script_or_style_and_the_policy_is_sent(
    client: TestClient[Any, Any],
) -> None:
    response, html = await _page(client)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    page = _Page()
    page.feed(html)
    scripts = page.of("script")
    assert [s["src"] for s in scripts] == [
        "/static/vendor/chartjs/chart.umd.min.js",
        "/static/dashboard/dashboard.js",
    ]
    assert page.of("style") == []
    for tag, attrs in page.tags:
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], tag
    sheets = [link["href"] for link in page.of("link") if link.get("rel") == "stylesheet"]
    # The sheet shared with the staff console first: the dashboard's own adds to it.
    assert sheets == ["/static/shared/page.css", "/static/dashboard/dashboard.css"]
    for src in [s["src"] for s in scripts] + sheets:
        assert src is not None
        served = await client.get(src)
        assert served.status == 200, src  # served from this origin, never from a CDN


async def test_every_chart_has_a_table_and_a_csv_link(client: TestClient[Any, Any]) -> None:
    _, html = await _page(client)
    sections = re.findall(r"<section id=\"([^\"]+)\".*?</section>", html, flags=re.S)
    assert sections == ["by-area", "by-service", "by-ward", "disparity", "transport"]
    *charted, transport = re.findall(r"<section.*?</section>", html, flags=re.S)
    # Buses and trains: counts by group, tables only (no chart), the figures' JSON beside them.
    assert len(re.findall(r"<table ", transport)) == 3 and "<canvas" not in transport
    assert '<a href="/api/v1/open-data/transport">' in transport
    for block in charted:
        charts = len(re.findall(r"<canvas |class=\"ward-map\"", block))
        assert charts >= 1
        assert len(re.findall(r"<table ", block)) == charts
        csv_links = re.findall(r'<a href="([^"]+)" download>', block)
        assert len(csv_links) == charts
        for link in csv_links:
            assert link.startswith("/api/v1/open-data/performance?group=")
            assert "format=csv" in link


def test_the_vendored_chart_library_ships_with_its_licence_and_readme() -> None:
    vendor = ROOT / "bot" / "web" / "static" / "vendor" / "chartjs"
    assert "MIT License" in (vendor / "LICENSE.md").read_text()
    readme = (vendor / "README.md").read_text()
    version = re.search(r"Version: \*\*([0-9.]+)\*\*", readme)
    assert version is not None
    assert f"v{version.group(1)}" in (vendor / "chart.umd.min.js").read_text()[:300]


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def _ids(catalog: Catalog) -> set[str]:
    return {m.id for m in catalog if m.id and isinstance(m.id, str)}


def test_the_template_holds_every_text_of_the_page() -> None:
    with (ROOT / "babel-dashboard.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, "babel-dashboard.cfg")
    extracted = {
        message
        for _, _, message, _, _ in extract_from_dir(ROOT, method_map, options_map)
        if isinstance(message, str)
    }
    template = _ids(_read(LOCALE_DIR / f"{DOMAIN}.pot"))
    assert extracted == template, "run `make locales` and translate the new texts"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_text_is_translated_with_its_placeholders(locale: str) -> None:
    template = _ids(_read(LOCALE_DIR / f"{DOMAIN}.pot"))
    catalog = _read(LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po", locale)
    assert _ids(catalog) == template
    for msgid in sorted(template):
        message = catalog.get(msgid)
        assert message is not None and message.string and not message.fuzzy, (locale, msgid)
        assert isinstance(message.string, str)
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(msgid))
    assert translations(DOMAIN, locale).gettext("Ward {ward}") != "Ward {ward}"
