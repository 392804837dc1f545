"""The console's analytics page (/staff/analytics): its script asks only for routes the admin
API has, every word it says is on its page, and the departments it drills down through are the
forms' groups with every service in one of them. Drawn in a browser in test_dashboard_browser.py.
"""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

from aiohttp.test_utils import TestClient

from bot.web.staff_api import API_PREFIX, ENDPOINTS
from bot.web.staff_console import ANALYST_EXPORT, PAGES, departments
from bot.web.webchat import STATIC_DIR
from forms_runtime.loader import standard_forms
from staff.roles import Permission

ANALYTICS_JS = STATIC_DIR / "staff" / "analytics.js"
TEMPLATE = STATIC_DIR.parent / "templates" / "staff" / "analytics.html"


def test_the_page_needs_the_analysts_permission() -> None:
    page = next(p for p in PAGES if p.name == "analytics")
    assert page.permission is Permission.VIEW_ANALYTICS
    assert "analytics.view" in ANALYTICS_JS.read_text()  # the page says so, not an empty table


def test_the_script_calls_only_routes_the_admin_api_has() -> None:
    script = ANALYTICS_JS.read_text()
    calls = re.findall(r'api\(\s*"(GET)",\s*"([^"?]+)', script)
    assert {path for _, path in calls} == {
        "/open-data/performance",
        "/equity-alerts",
        "/incident-suggestions/precision",
    }
    served = {(e.method, e.path) for e in ENDPOINTS}
    for call in calls:
        assert call in served, call
    # The CSV links it builds are routes too.
    for path in re.findall(r'csv\("(/[a-z-]+)"', script):
        assert ("GET", "/open-data" + path) in served, path


def test_every_text_the_script_says_is_on_its_page() -> None:
    used = set(re.findall(r"\bT\.(\w+)", ANALYTICS_JS.read_text()))
    assert len(used) >= 10, used
    template = TEMPLATE.read_text()
    for name in sorted(used):
        attribute = "data-" + re.sub(r"[A-Z]", lambda m: "-" + m.group().lower(), name)
        assert f"{attribute}=" in template, name


def test_every_service_is_in_one_department() -> None:
    forms = standard_forms()
    grouped = departments(forms)
    codes = [s["code"] for d in grouped for s in d["services"]]
    assert sorted(codes) == sorted(f.service_code for f in forms.values())
    water = next(d for d in grouped if d["name"] == "Water and Sanitation")
    assert {s["code"]: s["title"] for s in water["services"]} == {
        "WATER-NO-SUPPLY": "No water supply",
        "WATER-LEAK": "Water leak or burst pipe",
        "SEWER-BLOCKAGE": "Sewage overflow or blocked drain",
    }


def test_the_analysts_export_is_a_route_of_the_api() -> None:
    assert ("GET", ANALYST_EXPORT.removeprefix(API_PREFIX)) in {
        (e.method, e.path) for e in ENDPOINTS
    }


async def test_the_page_hands_its_script_the_departments(client: TestClient[Any, Any]) -> None:
    response = await client.get("/staff/analytics")
    assert response.status == 200
    html = await response.text()
    found = re.search(r"data-departments='([^']*)'", html)
    assert found is not None
    # A single-quoted attribute: tojson escapes the quotes that would end it.
    assert json.loads(unescape(found.group(1))) == departments(standard_forms())
    assert html.index("/static/staff/console.js") < html.index("/static/staff/analytics.js")
    assert f'data-analyst-export="{ANALYST_EXPORT}"' in html
