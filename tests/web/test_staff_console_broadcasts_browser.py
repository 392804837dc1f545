"""Broadcasts and known incidents in the staff console, in a real browser (Debian's Chromium,
driven by Playwright) against a real ``citybot serve`` whose Telegram channel talks to the fake
Telegram Bot API (tests/fakes) over loopback.

A ward broadcaster writes an emergency, is told of a refusal in words, previews it (who gets
English instead of their language), and asks to send it; the page explains four eyes; an
approver approves; the fake Telegram takes it for one follower and refuses the other; the
report and its CSV say so; resent to the failed only, each follower has it exactly once. A
routine draft is cancelled and copied into a new one. An incident is declared and ended, each told to the ward's
followers. axe-core checks every screen on the way; screenshots go with the other browser-test
artifacts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from storage.models import Resident, ResidentAddress, Subscription
from storage.types import utc_now
from tests.fakes.telegram_api import FakeTelegram
from tests.web.axe_audit import assert_accessible
from tests.web.serve_process import ServeProcess
from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.web.test_staff_console_browser import Console, Person, _run, add_account

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="browser test: /usr/bin/chromium is absent (CI installs it)"
    ),
]

TELEGRAM_TOKEN = "7000000001:AAFakeTokenForTests"
TEXT = "Burst main: no water in ward 9 until 18:00."
# Two Telegram followers of ward 9: one reads English, one Afrikaans (no Afrikaans text is
# written, so the preview warns that one resident gets English).
FOLLOWERS = {"5550001": "en", "5550002": "af"}


class FakeTelegramThread:
    """The fake Telegram on an event loop of its own: Playwright's sync API holds this one."""

    def __init__(self) -> None:
        self.fake = FakeTelegram()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeTelegram:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(10)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def sent_to(telegram: FakeTelegram, text: str) -> list[str]:
    """The chats Telegram took a message containing ``text`` for, once per message, sorted."""
    return sorted(
        call.form["chat_id"]
        for call in list(telegram.calls("sendMessage"))
        if text in call.form.get("text", "")
    )


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"still waiting after {timeout} s"
        time.sleep(0.1)
    return found


async def _followers(url: str) -> None:
    engine = create_async_engine(url)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions() as session, session.begin():
            for chat, locale in FOLLOWERS.items():
                resident = Resident(locale=locale)
                session.add(resident)
                await session.flush()
                session.add(
                    ResidentAddress(
                        resident_id=resident.id,
                        channel="telegram",
                        address=chat,
                        last_inbound_at=utc_now(),
                    )
                )
                session.add(Subscription(resident_id=resident.id, ward="9"))
    finally:
        await engine.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegramThread() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, telegram: FakeTelegram
) -> Iterator[ServeProcess]:
    serve = ServeProcess(
        tmp_path_factory.mktemp("console-broadcasts"),
        env={
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_API_BASE_URL": telegram.url,
            # Whatever the hour the suite runs at, a routine message may go.
            "CITYBOT_QUIET_HOURS": "off",
        },
    )
    serve.start()
    _run(_followers(serve.env["CITYBOT_DATABASE_URL"]))
    yield serve
    serve.stop()


def sign_in_with_code(tab: Console, person: Person, path: str) -> None:
    tab.goto(path)
    tab.sign_in(person)
    tab.page.get_by_label("6-digit code from your authenticator app").fill(person.code())
    tab.page.get_by_role("button", name="Sign in", exact=True).click()


def test_a_broadcast_is_written_approved_sent_and_reported(
    server: ServeProcess, browser: Any, telegram: FakeTelegram
) -> None:
    from playwright.sync_api import expect

    thandi = add_account(server, "thandi@city.example", ["broadcaster"], wards=["9"])
    approver = add_account(server, "zanele@city.example", ["approver"])

    tab = Console(browser, server)
    page = tab.page
    sign_in_with_code(tab, thandi, "/staff/sign-in?next=%2Fstaff%2Fbroadcasts")
    expect(page).to_have_url(f"{server.url}/staff/broadcasts")
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link")).to_have_text(
        ["Home", "Broadcasts", "Known incidents", "Suggested incidents", "Change my password"]
    )
    expect(page.locator("#broadcasts-table")).to_contain_text("Nothing to show.")
    assert_accessible(page, "broadcasts, none yet")

    compose = page.locator("#compose-form")
    compose.get_by_label("Title").fill("Burst main")
    compose.get_by_label("English (required)").fill(TEXT)
    expect(page.locator("#compose-missing")).to_have_text(
        "No text yet in Afrikaans, isiZulu, isiXhosa: residents who read those get the English one."
    )
    # A ward outside the broadcaster's own is the API's refusal, said in words on the page.
    compose.get_by_label("Ward numbers").fill("94")
    compose.get_by_role("button", name="Save the draft and preview it").click()
    expect(page.get_by_role("alert")).to_have_text("Ward 94 is outside your wards.")
    expect(page.locator("#compose-wards-hint")).to_contain_text("Yours: 9.")
    expect(compose).to_be_visible()

    compose.get_by_label("Ward numbers").fill("9")
    compose.get_by_label("Topic").select_option("water")
    compose.get_by_label("Emergency: goes out at once").check()
    compose.get_by_role("button", name="Save the draft and preview it").click()
    expect(page.get_by_role("status")).to_have_text(
        "The draft Burst main is saved. Check the preview, then request sending."
    )
    preview = page.locator("#preview")
    expect(preview).to_be_focused()
    expect(page.locator("#preview-warnings")).to_contain_text(
        "No Afrikaans text: 1 resident will get the English one."
    )
    expect(page.locator("#preview-warnings")).to_contain_text(
        "It waits for an approver other than its author before it goes."
    )
    expect(page.locator("#preview-recipients")).to_have_text("2")
    expect(page.locator("#preview-cost")).to_have_text("0.00 ZAR")
    channels = page.locator("#preview-channels")
    expect(channels.get_by_role("row").filter(has_text="telegram")).to_contain_text("2")
    languages = page.locator("#preview-languages")
    expect(languages.get_by_role("row").filter(has_text="Afrikaans")).to_contain_text("English")
    # The map: the dashboard's drawing of the city's wards (GET /dashboard/wards.svg), the
    # target marked, and its words beside it (the drawing is hidden from screen readers).
    expect(page.locator("#ward-map-caption")).to_have_text("Target wards: 9")
    drawing = page.locator("#ward-map svg")
    expect(drawing).to_have_attribute("aria-hidden", "true")
    expect(drawing.locator("path[data-ward]")).to_have_count(116)
    expect(drawing.locator("path.target")).to_have_count(1)
    expect(drawing.locator("path.target")).to_have_attribute("data-ward", "9")
    assert_accessible(page, "broadcasts, a draft previewed")
    page.locator("#broadcast").screenshot(path=str(ARTIFACTS / "staff-broadcast-preview.png"))

    page.get_by_role("button", name="Request sending").click()
    expect(page.get_by_role("status")).to_have_text(
        "Sent for approval: an approver other than you must approve it."
    )
    expect(page.locator("#broadcast-state")).to_have_text("awaiting_approval")
    expect(page.locator("#four-eyes")).to_have_text(
        "You wrote this broadcast, so an approver other than you must approve it (four eyes)."
    )
    expect(page.get_by_role("button", name="Approve")).to_be_hidden()
    expect(page.get_by_role("button", name="Request sending")).to_be_hidden()
    row = page.locator("#broadcasts-table").get_by_role("row").filter(has_text="Burst main")
    expect(row).to_contain_text("awaiting_approval")
    expect(row).to_contain_text("you (thandi@city.example)")
    assert_accessible(page, "broadcasts, awaiting approval")
    assert sent_to(telegram, TEXT) == []

    # The approver, another person, opens it from the list and approves it.
    other = Console(browser, server)
    sign_in_with_code(other, approver, "/staff/sign-in?next=%2Fstaff%2Fbroadcasts")
    expect(other.page).to_have_url(f"{server.url}/staff/broadcasts")
    listed = other.page.locator("#broadcasts-table").get_by_role("row")
    expect(listed.filter(has_text="Burst main")).to_contain_text("thandi@city.example")
    other.page.get_by_role("button", name="Open Burst main").click()
    expect(other.page.locator("#broadcast")).to_be_focused()
    expect(other.page.locator("#four-eyes")).to_have_text(
        "It waits for an approver other than its author: you may approve it."
    )
    assert_accessible(other.page, "broadcasts, an approver's view")
    # Telegram refuses the first message it is given: that follower's delivery fails.
    telegram.fail_method(
        "sendMessage", 400, {"ok": False, "error_code": 400, "description": "Bad Request"}
    )
    other.page.get_by_role("button", name="Approve").click()
    expect(other.page.get_by_role("status")).to_have_text("Approved: it goes out at its time.")
    expect(other.page.locator("#broadcast-approved")).to_contain_text("zanele@city.example")

    # The worker of the same `citybot serve` sends it on Telegram: one follower gets it.
    wait_for(lambda: len(sent_to(telegram, TEXT)) >= 1)
    [got_it] = sent_to(telegram, TEXT)
    [refused] = sorted(set(FOLLOWERS) - {got_it})

    # Opened again, it shows where it stands now, once every delivery is settled.
    def settled() -> bool:
        page.get_by_role("button", name="Open Burst main").click()
        return page.locator("#broadcast-state").inner_text() == "sent"

    wait_for(settled)
    page.get_by_role("button", name="Show the report").click()
    expect(page.locator("#report")).to_be_focused()
    expect(page.locator("#report-summary")).to_have_text(
        "State sent, 2 recipients: sent 1, failed 1."
    )
    by_channel = page.locator("#report-channel")
    # queued, sent, delivered, failed, unreachable
    expect(by_channel.get_by_role("row").filter(has_text="telegram")).to_have_text("telegram01010")
    by_ward = page.locator("#report-ward")
    expect(by_ward.get_by_role("row").filter(has_text="9")).to_have_text("901010")
    by_language = page.locator("#report-language")
    expect(by_language.get_by_role("row")).to_have_count(3)
    assert_accessible(page, "broadcasts, the report")
    page.locator("#broadcast").screenshot(path=str(ARTIFACTS / "staff-broadcast-report.png"))
    csv_link = page.get_by_role("link", name="Download the report (CSV)")
    href = csv_link.get_attribute("href")
    assert href is not None and href.endswith("/report?format=csv")
    exported = page.request.get(server.url + href)
    assert exported.status == 200
    assert "channel,telegram,sent,1" in exported.text()
    assert "channel,telegram,failed,1" in exported.text()

    # Resent to the failed follower only: each follower has it once, no one twice.
    page.get_by_role("button", name="Resend to failed recipients only").click()
    expect(page.get_by_role("status")).to_have_text("1 failed messages are queued again.")
    wait_for(lambda: len(sent_to(telegram, TEXT)) >= 2)
    assert sent_to(telegram, TEXT) == sorted([got_it, refused])
    wait_for(settled)
    page.get_by_role("button", name="Show the report").click()
    expect(page.locator("#report-summary")).to_have_text("State sent, 2 recipients: sent 2.")
    expect(by_channel.get_by_role("row").filter(has_text="telegram")).to_have_text("telegram02000")
    assert sent_to(telegram, TEXT) == sorted(FOLLOWERS)

    # A routine draft is cancelled before it goes.
    compose.get_by_label("Title").fill("Refuse strike")
    compose.get_by_label("English (required)").fill("Refuse is not collected this week.")
    compose.get_by_label("Ward numbers").fill("9")
    compose.get_by_role("button", name="Save the draft and preview it").click()
    expect(page.locator("#broadcast-heading")).to_contain_text("Refuse strike")
    page.get_by_role("button", name="Cancel the broadcast").click()
    expect(page.get_by_role("status")).to_have_text("Cancelled: nothing more is sent.")
    expect(page.locator("#broadcast-state")).to_have_text("cancelled")
    # Written again from the cancelled one: the form is filled in with what it said.
    page.get_by_role("button", name="Copy into a new draft").click()
    expect(compose.get_by_label("Title")).to_be_focused()
    expect(compose.get_by_label("Title")).to_have_value("Refuse strike")
    expect(compose.get_by_label("English (required)")).to_have_value(
        "Refuse is not collected this week."
    )
    expect(compose.get_by_label("Ward numbers")).to_have_value("9")
    page.get_by_label("State", exact=True).select_option("cancelled")
    page.get_by_role("button", name="Show broadcasts").click()
    expect(page.locator("#broadcasts-table")).not_to_contain_text("Burst main")
    expect(page.locator("#broadcasts-table")).to_contain_text("Refuse strike")
    tab.check()
    other.check()


def test_an_incident_is_declared_and_ended(
    server: ServeProcess, browser: Any, telegram: FakeTelegram
) -> None:
    from playwright.sync_api import expect

    sipho = add_account(server, "sipho@city.example", ["broadcaster"], wards=["9"])
    tab = Console(browser, server)
    page = tab.page
    sign_in_with_code(tab, sipho, "/staff/sign-in?next=%2Fstaff%2Fincidents")
    expect(page).to_have_url(f"{server.url}/staff/incidents")
    table = page.locator("#incidents-table")
    expect(table).to_contain_text("Nothing to show.")
    expect(page.locator("#none-open")).to_be_visible()
    expect(page.locator("#change-form")).to_be_hidden()
    assert_accessible(page, "incidents, none yet")

    declare = page.locator("#declare-form")
    declare.get_by_label("Title").fill("Water cut in ward 9")
    declare.get_by_role("checkbox", name="No water supply").check()
    declare.get_by_label("Affected wards").fill("9")
    declare.get_by_label("English (required)").fill("Water is off in ward 9 for repairs.")
    declare.get_by_label("Expected end").fill("2031-01-05T18:00")
    declare.get_by_role("button", name="Declare the incident").click()
    expect(page.get_by_role("status")).to_have_text(
        "Water cut in ward 9 is declared: subscribers in its wards are being told."
    )
    row = table.get_by_role("row").filter(has_text="Water cut in ward 9")
    expect(row).to_contain_text("No water supply")
    expect(row).to_contain_text("open")
    assert_accessible(page, "incidents, one declared")
    page.screenshot(path=str(ARTIFACTS / "staff-incidents.png"), full_page=True)
    declared = "Water is off in ward 9 for repairs."
    wait_for(lambda: len(sent_to(telegram, declared)) >= 2)
    assert sent_to(telegram, declared) == sorted(FOLLOWERS)

    row.get_by_role("button", name="Change Water cut in ward 9").click()
    change = page.locator("#change-form")
    expect(change.get_by_label("Incident")).to_be_focused()
    # The incident's wards on the map, and in words.
    expect(page.locator("#ward-map-caption")).to_have_text("Affected wards: 9")
    expect(page.locator("#ward-map path.target")).to_have_attribute("data-ward", "9")
    change.get_by_label("Status").select_option("resolved")
    change.get_by_role("button", name="Save and tell subscribers").click()
    expect(page.get_by_role("status")).to_have_text(
        "Water cut in ward 9 is resolved: subscribers are being told."
    )
    expect(row).to_contain_text("resolved")
    # An ended incident cannot change again: its Change button is gone.
    expect(row.get_by_role("button")).to_have_count(0)
    expect(page.locator("#none-open")).to_be_visible()
    # The end goes out as the standard text in each follower's language, naming the incident.
    wait_for(lambda: len(sent_to(telegram, "Water cut in ward 9")) >= 2)
    assert sent_to(telegram, "Water cut in ward 9") == sorted(FOLLOWERS)
    assert_accessible(page, "incidents, one ended")
    tab.check()
