"""The public dashboard and the console's analytics page in a real browser (Debian's Chromium,
driven by Playwright) against a real ``citybot serve`` filled by ``citybot demo seed``.

The dashboard is drawn in each of its four languages, on a phone and on a desktop: every chart
is drawn, every table filled, every ward on the map coloured or hatched, every CSV link answers
with CSV, nothing is fetched from another origin, no script error; axe-core (vendored, see
tests/web/axe_audit.py) finds no WCAG 2.1 A/AA violation on the phone, tables open. The
buses and trains tables (issue 18) show what the open data publishes, suppressed groups said so. Screenshots go
to the browser tests' artifacts folder (tests/artifacts/dashboard-<lang>-<size>.png).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from storage.models import AggregateAnswer, Resident, Submission
from storage.session import create_engine, create_sessionmaker
from tests.pothole_report import pothole_submission
from tests.web.axe_audit import assert_accessible, serve_axe
from tests.web.serve_process import CITYBOT, ServeProcess
from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.web.test_staff_console_browser import add_account

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="browser test: /usr/bin/chromium is absent (CI installs it)"
    ),
]

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
# Enough requests for most wards to pass the suppression threshold in a month (about 25 a
# ward), few enough to seed and roll up in seconds.
DEMO_REQUESTS = 12_000
DEMO_DAYS = 120
HEADINGS = {
    "en": "Time to close, by ward",
    "af": "Tyd tot sluiting, volgens wyk",
    "zu": "Isikhathi sokuvala, ngewadi",
    "xh": "Ixesha lokuvala, ngewadi",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    workdir = tmp_path_factory.mktemp("dashboard")
    serve = ServeProcess(workdir)
    serve.start()  # migrates the database
    seeded = subprocess.run(
        [str(CITYBOT), "demo", "seed", "--requests", str(DEMO_REQUESTS), "--days", str(DEMO_DAYS)],
        cwd=workdir,
        env=serve.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr
    yield serve
    serve.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Tab:
    """A browser tab on the server, failing on any script error or foreign request."""

    def __init__(self, browser: Any, server: ServeProcess, size: dict[str, Any]) -> None:
        self.url = server.url
        self.context = browser.new_context(**size)
        serve_axe(self.context, server.url)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(m.text)
                if m.type == "error" and "status of 401" not in m.text
                else None
            ),
        )
        self.requested: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))

    def check(self) -> None:
        assert not self.errors, self.errors
        assert self.requested and all(u.startswith(self.url) for u in self.requested), (
            self.requested
        )

    def close(self) -> None:
        self.context.close()


def _drawn(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => ({
        charts: Array.from(document.querySelectorAll("canvas")).map(
            c => Boolean(window.Chart.getChart(c)) && c.width > 0),
        datasets: Array.from(document.querySelectorAll("canvas")).map(
            c => window.Chart.getChart(c).data.datasets.reduce(
                (n, d) => n + d.data.filter(v => v !== null).length, 0)),
        wards: document.querySelectorAll("#ward-map path[data-ward]").length,
        coloured: document.querySelectorAll("#ward-map path[class*='bin-']").length,
        hatched: document.querySelectorAll("#ward-map path.no-data").length,
        legend: document.querySelectorAll("#ward-legend li").length,
        rows: Object.fromEntries(Array.from(document.querySelectorAll("main table")).map(
            t => [t.id, t.tBodies[0].rows.length])),
        csv: Array.from(document.querySelectorAll("a[download]")).map(a => a.href),
    })"""
        )
    )


@pytest.mark.parametrize("locale", ["en", "af", "zu", "xh"])
def test_the_dashboard_is_drawn_and_accessible_in_each_language(
    server: ServeProcess, browser: Any, locale: str
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        tab = Tab(browser, server, size)
        page = tab.page
        page.goto(f"{server.url}/dashboard?lang={locale}")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=30_000)
        expect(page.get_by_role("heading", level=2, name=HEADINGS[locale])).to_be_visible()
        expect(page.locator("#demo-note")).to_be_visible()  # the figures count demo requests
        drawn = _drawn(page)
        assert drawn["charts"] == [True] * 4, drawn
        assert all(n > 0 for n in drawn["datasets"]), drawn
        # Every ward of the gazetteer is on the map, coloured by its figure or hatched.
        assert drawn["wards"] == 116
        assert drawn["coloured"] + drawn["hatched"] == 116
        assert drawn["coloured"] > 50, drawn  # the demo data reaches most wards
        assert drawn["legend"] >= 3
        assert all(rows > 0 for rows in drawn["rows"].values()), drawn["rows"]
        assert drawn["rows"]["by-ward-table"] >= drawn["coloured"]
        tab.check()
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{locale}-{size_name}.png"), full_page=True)
        if size_name == "phone":
            # The same page at either size: audited once, with its tables open.
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            assert_accessible(page, f"dashboard ({locale})")
        else:
            for link in sorted(set(drawn["csv"])):
                answer = page.request.get(link)
                assert answer.status == 200, link
                assert answer.headers["content-type"].startswith("text/csv"), link
                assert answer.text().count("\n") > 1, link
        tab.close()


def test_the_language_switcher_keeps_the_period(server: ServeProcess, browser: Any) -> None:
    from playwright.sync_api import expect

    tab = Tab(browser, server, PHONE)
    page = tab.page
    page.goto(f"{server.url}/dashboard")
    page.get_by_label("Show the figures by").select_option("week")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=30_000)
    page.get_by_role("navigation", name="Language").get_by_role("link", name="isiXhosa").click()
    expect(page.locator("html")).to_have_attribute("lang", "xh")
    expect(page.locator("body")).to_have_attribute("data-period", "week")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=30_000)
    tab.check()
    tab.close()


def test_an_analyst_drills_down_from_a_department_to_a_services_wards(
    server: ServeProcess, browser: Any
) -> None:
    from playwright.sync_api import expect

    analyst = add_account(server, "analyst@city.example", ["analyst"])
    tab = Tab(browser, server, PHONE)
    page = tab.page
    page.goto(f"{server.url}/staff/analytics")
    page.get_by_label("Email").fill(analyst.email)
    page.get_by_label("Password").fill(analyst.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{server.url}/staff/analytics")
    departments = page.locator("#departments-table")
    expect(departments).to_contain_text("Water and Sanitation")
    # The equity watch, from the analysts' API: the rule, and the alerts it raised (or none).
    expect(page.locator("#alerts-rule")).to_contain_text("above 1.5 for two months running")
    assert page.locator("#alerts-table tbody tr").count() >= 1
    assert_accessible(page, "analytics, departments")
    page.get_by_role("button", name="Open the services of Water and Sanitation").click()
    services = page.locator("#services-table")
    expect(services).to_contain_text("Water leak or burst pipe")
    expect(page.get_by_role("heading", name="Services of Water and Sanitation")).to_be_focused()
    page.get_by_role("button", name="Water leak or burst pipe by ward").first.click()
    expect(page.get_by_role("heading", name="Water leak or burst pipe by ward")).to_be_focused()
    assert page.locator("#wards-table tbody tr").count() > 10
    assert_accessible(page, "analytics, a service's wards")
    for link in ("#wards-csv", "#wards-requests-csv", "#department-export"):
        href = page.locator(link).get_attribute("href")
        assert href is not None
        answer = page.request.get(server.url + href)
        assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    page.screenshot(path=str(ARTIFACTS / "staff-analytics.png"), full_page=True)
    tab.check()
    tab.close()


def test_the_wards_svg_is_what_the_map_draws(server: ServeProcess) -> None:
    import urllib.request

    with urllib.request.urlopen(server.url + "/dashboard/wards.svg", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("image/svg+xml")
        assert response.read().count(b"<path data-ward=") == 116


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    # Playwright's sync API runs an event loop in this thread: the database work gets its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


async def _add_bus_reports(database_url: str) -> None:
    """Issue 18's reports: 12 late buses in formal areas from residents with a disability who
    are women, 12 no-shows in informal settlements and 3 full buses in mixed areas with no
    optional answers (3 are too few: those figures are suppressed)."""
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            plan = [("formal", "late", True)] * 12
            plan += [("informal_settlement", "no_show", False)] * 12 + [
                ("mixed", "full", False)
            ] * 3
            for n, (area_type, problem, answered) in enumerate(plan):
                resident = Resident(locale="en")
                session.add(resident)
                await session.flush()
                submission = Submission(
                    **pothole_submission(
                        f"CT-BUS{n:03d}",
                        form_id="transport_reliability",
                        service_code="TRANSPORT-RELIABILITY",
                        answers={"operator": "myciti", "problem": problem},
                        area_type=area_type,
                        resident_id=resident.id,
                    )
                )
                session.add(submission)
                await session.flush()
                if answered:
                    for step, value in (("gender", "woman"), ("disability", "disabled")):
                        session.add(
                            AggregateAnswer(
                                submission_id=submission.id,
                                resident_id=resident.id,
                                form_id="transport_reliability",
                                step_id=step,
                                value=value,
                                special=step == "disability",
                            )
                        )
    finally:
        await engine.dispose()


def test_the_transport_tables_show_what_the_open_data_publishes(
    server: ServeProcess, browser: Any
) -> None:
    from playwright.sync_api import expect

    _run(_add_bus_reports(server.env["CITYBOT_DATABASE_URL"]))
    tab = Tab(browser, server, DESKTOP)
    page = tab.page
    published = page.request.get(f"{server.url}/api/v1/open-data/transport").json()
    page.goto(f"{server.url}/dashboard?lang=en")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=30_000)
    suppressed = page.locator("#texts").get_attribute("data-suppressed")
    shown_any = hidden_any = False
    for table, group in (("area_type", "area"), ("gender", "gender"), ("disability", "disability")):
        cells = page.evaluate(
            "id => Array.from(document.getElementById(id).tBodies[0].rows).map("
            "r => Array.from(r.cells).map(c => c.textContent.trim()))",
            f"transport-{group}-table",
        )
        assert len(cells) == len(published["by"][table])
        for row, answer in zip(cells, published["by"][table], strict=True):
            assert row[0] and row[0] != answer["group"]  # a name in the page's language
            if answer["suppressed"]:
                hidden_any = True
                assert row[1:] == [suppressed, "", "", "", "", ""], row
                continue
            shown_any = True
            figures = [answer["problems"][p] for p in published["problems"]]
            expected = [str(n) if n is not None else suppressed for n in figures]
            assert row[1:] == [str(answer["reports"]), *expected], row
    # The reports added show somewhere, and a suppressed group says so rather than a number.
    assert shown_any and hidden_any
    assert any(r["reports"] == 12 for r in published["by"]["disability"])
    assert any(r["suppressed"] for r in published["by"]["area_type"])
    tab.check()
    tab.close()
