"""Suggested incidents in the staff console, in a real browser (Debian's Chromium, driven by
Playwright) against a real ``citybot serve`` whose own ``early_warning`` worker reads the reports.

Two weeks of ordinary "no water" reports in wards 9 and 10, then six in twenty minutes in each:
the worker suggests two incidents. A ward-9 supervisor sees only ward 9's, opens it (the reports
behind it, where and when), and confirms it; a city-wide supervisor dismisses ward 10's with a
reason. axe-core checks every screen on the way. The analytics page then shows the detector's
precision for the week, city-wide and in ward 9.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from storage.models import AuditLog, IncidentSuggestion, Submission
from storage.types import utc_now
from tests.web.axe_audit import assert_accessible
from tests.web.serve_process import ServeProcess
from tests.web.test_browser import ARTIFACTS, CHROMIUM
from tests.web.test_staff_console_broadcasts_browser import browser, wait_for
from tests.web.test_staff_console_browser import Console, _run, add_account

__all__ = ["browser"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="browser test: /usr/bin/chromium is absent (CI installs it)"
    ),
]


async def _reports(url: str) -> None:
    engine = create_async_engine(url)
    now = utc_now()
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions() as session, session.begin():
            rows = []
            for day in range(14, 0, -1):
                for ward in ("9", "10"):
                    rows.append((now - timedelta(days=day, hours=int(ward)), ward))
            for i in range(6):
                for ward in ("9", "10"):
                    rows.append((now - timedelta(minutes=20 - 3 * i), ward))
            for number, (at, ward) in enumerate(sorted(rows), start=1):
                session.add(
                    Submission(
                        reference=f"CT-B{number:05d}",
                        form_id="no_water",
                        form_version=1,
                        service_code="WATER",
                        locale="en",
                        answers={},
                        ward=ward,
                        wards=[ward],
                        suburb=f"Suburb {ward}",
                        area_type="formal",
                        precision="suburb",
                        place_source="place",
                        created_at=at,
                        updated_at=at,
                    )
                )
    finally:
        await engine.dispose()


async def _count(url: str, query: Any) -> int:
    engine = create_async_engine(url)
    try:
        async with async_sessionmaker(engine)() as session:
            return int(await session.scalar(query) or 0)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    serve = ServeProcess(tmp_path_factory.mktemp("console-suggestions"))
    serve.start()
    url = serve.env["CITYBOT_DATABASE_URL"]
    _run(_reports(url))
    # The worker reads them on its next cycle (every 15 s when idle).
    suggested = select(func.count()).select_from(IncidentSuggestion)
    wait_for(lambda: _run(_count(url, suggested)) >= 2, timeout=120.0)
    yield serve
    serve.stop()


def test_suggestions_are_confirmed_and_dismissed(server: ServeProcess, browser: Any) -> None:
    from playwright.sync_api import expect

    nomsa = add_account(server, "nomsa@city.example", ["supervisor"], wards=["9"])
    tab = Console(browser, server)
    page = tab.page
    tab.goto("/staff/sign-in?next=%2Fstaff%2Fincident-suggestions")
    tab.sign_in(nomsa)
    expect(page).to_have_url(f"{server.url}/staff/incident-suggestions")
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Suggested incidents")).to_be_visible()
    table = page.locator("#suggestions-table")
    # Ward 9's only: ward 10's is outside her wards.
    row = table.get_by_role("row").filter(has_text="ward 9")
    expect(row).to_contain_text("No water supply")
    expect(table.get_by_role("row").filter(has_text="ward 10")).to_have_count(0)
    expect(row).to_contain_text("suggested")
    # Its count in the window against what is usual there then.
    expect(row.get_by_role("cell").nth(4)).to_have_text(re.compile(r"^\d where 0\.\d\d are usual$"))
    assert_accessible(page, "suggested incidents, one waiting")

    row.get_by_role("button", name="Open the suggestion No water supply in ward 9").click()
    chosen = page.locator("#chosen")
    expect(chosen.get_by_role("heading", name="No water supply in ward 9")).to_be_focused()
    reports = page.locator("#reports-table")
    expect(reports.get_by_role("row")).to_have_count(1 + 6, timeout=10_000)
    # The first and latest report, and the count against the baseline.
    expect(page.locator("#chosen-summary")).to_contain_text(
        re.compile(r"6 reports from \S.* to \S.* \(UTC\); \d residents in the window where 0\.\d\d")
    )
    expect(reports).to_contain_text("Suburb 9")
    assert_accessible(page, "suggested incidents, one opened")
    page.screenshot(path=str(ARTIFACTS / "staff-incident-suggestions.png"), full_page=True)

    page.locator("#confirm-form").get_by_label("Title (optional)").fill("Dry taps in ward 9")
    page.get_by_role("button", name="Confirm and declare").click()
    expect(page.get_by_role("status")).to_contain_text("Declared as incident")
    expect(page.locator("#decide")).to_be_hidden()
    expect(page.locator("#chosen-summary")).to_contain_text("This suggestion is confirmed.")
    # The filter shows suggestions waiting: none is left in her wards.
    expect(table).to_contain_text("Nothing to show.")
    assert_accessible(page, "suggested incidents, one confirmed")
    tab.check()

    lindiwe = add_account(server, "lindiwe@city.example", ["supervisor"])
    other = Console(browser, server)
    other.goto("/staff/sign-in?next=%2Fstaff%2Fincident-suggestions")
    other.sign_in(lindiwe)
    ward10 = other.page.locator("#suggestions-table").get_by_role("row").filter(has_text="ward 10")
    ward10.get_by_role("button").click()
    dismiss = other.page.locator("#dismiss-form")
    dismiss.get_by_role("button", name="Dismiss the suggestion").click()
    # The reason is required: the browser keeps the form, nothing is sent.
    expect(other.page.locator("#decide")).to_be_visible()
    dismiss.get_by_label("Why is it not an incident?").fill("A test of the new water meters")
    dismiss.get_by_role("button", name="Dismiss the suggestion").click()
    expect(other.page.get_by_role("status")).to_have_text("Dismissed.")
    expect(other.page.locator("#chosen-summary")).to_contain_text("dismissed")
    assert_accessible(other.page, "suggested incidents, one dismissed")
    other.check()

    # The analytics page shows the detector's precision by week (confirmed / suggested), this
    # week last: two suggested, one confirmed, one dismissed, 50 %; in ward 9 only, 100 %. A week
    # with none has no precision, not 0 %.
    other.goto("/staff/analytics")
    weeks = other.page.locator("#precision-table tbody tr")
    expect(weeks).to_have_count(12)
    expect(weeks.last.locator("td")).to_have_text(["2", "1", "1", "50 %"])
    expect(weeks.first.locator("td")).to_have_text(["0", "0", "0", "–"])
    other.check()
    tab.goto("/staff/analytics")
    expect(tab.page.locator("#precision-table tbody tr").last.locator("td")).to_have_text(
        ["1", "1", "0", "100 %"]
    )
    tab.check()
    url = server.env["CITYBOT_DATABASE_URL"]
    audited = (
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.action.in_(("incident_suggestion.confirm", "incident_suggestion.dismiss")))
    )
    assert _run(_count(url, audited)) == 2
