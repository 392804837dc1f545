"""The staff console in a real browser (Debian's Chromium, driven by Playwright) against a real
``citybot serve``: an admin signs in with a TOTP code and creates a broadcaster, who signs in
with the one-time password and sets their own; a wrong password and a locked account are told
so; an agent cannot open the accounts page but works the service requests of their ward.
axe-core (vendored, see tests/web/axe_audit.py) checks every console page on the way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pyotp
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from staff import accounts
from staff.accounts import NewAccount
from storage.models import StaffAccount
from tests.web.axe_audit import assert_accessible, serve_axe
from tests.web.serve_process import ServeProcess
from tests.web.staff_members import FAST_HASHER, seed_request
from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PHONE

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="browser test: /usr/bin/chromium is absent (CI installs it)"
    ),
]


T = TypeVar("T")


@dataclass(frozen=True)
class Person:
    email: str
    password: str
    totp_secret: str | None

    def code(self) -> str:
        assert self.totp_secret is not None
        return pyotp.TOTP(self.totp_secret).now()


def _database_url(server: ServeProcess) -> str:
    return server.env["CITYBOT_DATABASE_URL"]


async def _add_account(url: str, email: str, roles: list[str], wards: list[str] | None) -> Person:
    engine = create_async_engine(url)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions() as session, session.begin():
            created = await accounts.create_account(
                session,
                NewAccount.checked(email, roles=roles, wards=wards),
                actor="test",
                hasher=FAST_HASHER,
            )
            await session.execute(
                update(StaffAccount)
                .where(StaffAccount.id == created.account.id)
                .values(must_change_password=False)
            )
    finally:
        await engine.dispose()
    secret = pyotp.parse_uri(created.totp_uri).secret if created.totp_uri else None
    return Person(email, created.password, secret)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    # Playwright's sync API runs an event loop in this thread: the database work gets its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def add_account(
    server: ServeProcess, email: str, roles: list[str], wards: list[str] | None = None
) -> Person:
    return _run(_add_account(_database_url(server), email, roles, wards))


async def _seed(url: str, reference: str, ward: str, phone: str) -> None:
    engine = create_async_engine(url)
    try:
        await seed_request(async_sessionmaker(engine), reference, ward=ward, phone=phone)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    serve = ServeProcess(tmp_path_factory.mktemp("console"))
    serve.start()
    yield serve
    serve.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Console:
    """One person's browser tab on the console, failing on any script or policy error."""

    def __init__(self, browser: Any, server: ServeProcess) -> None:
        self.url = server.url
        self.context = browser.new_context(**PHONE, locale="en-ZA")
        serve_axe(self.context, server.url)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(m.text)
                if m.type == "error" and "status of 4" not in m.text
                else None
            ),
        )
        self.requested: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))

    def goto(self, path: str) -> None:
        self.page.goto(self.url + path)

    def sign_in(self, person: Person, password: str | None = None) -> None:
        page = self.page
        page.get_by_label("Email").fill(person.email)
        page.get_by_label("Password").fill(password or person.password)
        page.get_by_role("button", name="Sign in", exact=True).click()

    def check(self) -> None:
        assert not self.errors, self.errors
        # Everything comes from the console's own origin: nothing from a CDN.
        assert all(url.startswith(self.url) for url in self.requested), self.requested


def test_an_admin_signs_in_with_totp_and_creates_a_broadcaster(
    server: ServeProcess, browser: Any
) -> None:
    from playwright.sync_api import expect

    admin = add_account(server, "admin@city.example", ["admin"])
    tab = Console(browser, server)
    page = tab.page
    # Not signed in: the accounts page sends the person to sign in, and back after.
    tab.goto("/staff/accounts")
    expect(page).to_have_url(f"{server.url}/staff/sign-in?next=%2Fstaff%2Faccounts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_accessible(page, "sign-in")

    tab.sign_in(admin)
    code = page.get_by_label("6-digit code from your authenticator app")
    expect(code).to_be_focused()
    expect(page.get_by_role("status")).to_have_text(
        "Enter the 6-digit code from your authenticator app."
    )
    assert_accessible(page, "sign-in, TOTP step")
    code.fill(admin.code())
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page).to_have_url(f"{server.url}/staff/accounts")
    table = page.get_by_role("table")
    expect(table).to_contain_text("admin@city.example")
    nav = page.get_by_role("navigation", name="Console")
    for allowed in ["Home", "Service requests", "Accounts and roles", "API tokens", "Audit log"]:
        expect(nav.get_by_role("link", name=allowed)).to_be_visible()
    assert_accessible(page, "accounts")

    create = page.locator("#create-form")
    create.get_by_label("Email").fill("thandi@city.example")
    create.get_by_label("Name").fill("Thandi Broadcaster")
    create.get_by_role("checkbox", name="broadcaster").check()
    create.get_by_label("Wards").fill("115, 116")
    create.get_by_label("Languages spoken").fill("en, xh")
    create.get_by_role("button", name="Create the account").click()
    created = page.locator("#created")
    expect(created).to_be_visible()
    expect(created).to_be_focused()
    one_time = page.locator("#created-password").inner_text()
    totp_uri = page.locator("#created-totp").inner_text()
    assert len(one_time) >= 12 and totp_uri.startswith("otpauth://totp/")
    row = table.get_by_role("row").filter(has_text="thandi@city.example")
    expect(row).to_contain_text("broadcaster")
    expect(row).to_contain_text("115, 116")
    assert_accessible(page, "accounts, a new account shown once")
    page.screenshot(path=str(ARTIFACTS / "staff-accounts.png"), full_page=True)

    # Change the new account's wards through the change form.
    row.get_by_role("button", name="Change thandi@city.example").click()
    change = page.locator("#change-form")
    expect(change.get_by_label("Account")).to_be_focused()
    change.get_by_label("Wards").fill("115")
    change.get_by_role("button", name="Save the changes").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(table.get_by_role("row").filter(has_text="thandi@city.example")).to_contain_text("115")

    tab.goto("/staff/")
    expect(page.locator("#welcome")).to_have_text("Signed in as admin@city.example")
    assert_accessible(page, "home")

    tab.goto("/staff/tokens")
    issue = page.locator("#issue-form")
    issue.get_by_label("Account").select_option(label="thandi@city.example")
    issue.get_by_role("checkbox", name="broadcaster").check()
    issue.get_by_role("button", name="Issue the token").click()
    expect(page.locator("#issued")).to_be_visible()
    assert page.locator("#issued-token").inner_text().startswith("cbt_")
    tokens = page.get_by_role("table")
    expect(tokens).to_contain_text("thandi@city.example")
    assert_accessible(page, "tokens")
    tokens.get_by_role("button", name="Revoke token").first.click()
    expect(tokens).to_contain_text("revoked")

    tab.goto("/staff/audit")
    entries = page.get_by_role("table")
    expect(entries).to_contain_text("account.create")
    page.get_by_label("Action").fill("token.")
    page.get_by_role("button", name="Show entries").click()
    expect(entries).not_to_contain_text("account.create")
    expect(entries).to_contain_text("token.issue")
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#verify-result")).to_contain_text("The audit chain is intact")
    assert_accessible(page, "audit")

    tab.goto("/staff/requests")
    expect(page.get_by_role("table")).to_contain_text("Nothing to show.")
    assert_accessible(page, "requests")

    tab.goto("/staff/password")
    expect(page.get_by_label("Current password")).to_be_visible()
    assert_accessible(page, "password")
    tab.check()

    # The broadcaster signs in with the one-time password and the code, and must set a password.
    thandi = Console(browser, server)
    thandi.goto("/staff/sign-in")
    person = Person("thandi@city.example", one_time, pyotp.parse_uri(totp_uri).secret)
    thandi.sign_in(person)
    thandi.page.get_by_label("6-digit code from your authenticator app").fill(person.code())
    thandi.page.get_by_role("button", name="Sign in", exact=True).click()
    expect(thandi.page).to_have_url(f"{server.url}/staff/password")
    expect(thandi.page.locator("#must-change")).to_be_visible()
    assert_accessible(thandi.page, "password, first sign-in")
    thandi.page.get_by_label("Current password").fill(one_time)
    thandi.page.get_by_label("New password", exact=True).fill("a long new password 1")
    thandi.page.get_by_label("New password again").fill("a long new password 1")
    thandi.page.get_by_role("button", name="Change my password").click()
    expect(thandi.page.get_by_role("status")).to_have_text("Your password is changed.")
    thandi.goto("/staff/")
    links = thandi.page.get_by_role("navigation", name="Console").get_by_role("link")
    expect(links).to_have_text(
        ["Home", "Broadcasts", "Known incidents", "Suggested incidents", "Change my password"]
    )

    # Disabled by the admin, the broadcaster's open session ends at the next page.
    tab.goto("/staff/accounts")
    page.get_by_role("button", name="Disable thandi@city.example").click()
    expect(page.get_by_role("status")).to_have_text("thandi@city.example is disabled.")
    expect(
        page.get_by_role("table").get_by_role("row").filter(has_text="thandi@city.example")
    ).to_contain_text("no")
    thandi.goto("/staff/")
    expect(thandi.page).to_have_url(f"{server.url}/staff/sign-in?next=%2Fstaff%2F")
    tab.check()
    thandi.check()


def test_a_wrong_password_and_a_locked_account_are_told_so(
    server: ServeProcess, browser: Any
) -> None:
    from playwright.sync_api import expect

    person = add_account(server, "sipho@city.example", ["agent"])
    tab = Console(browser, server)
    page = tab.page
    tab.goto("/staff/sign-in")
    tab.sign_in(person, password="not the password")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Password")).to_be_focused()
    assert_accessible(page, "sign-in, wrong password")
    # The fifth wrong password in a row locks the account for a while, the right one included.
    for _ in range(3):
        alert.evaluate("element => { element.textContent = '' }")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(alert).to_have_text("Wrong email or password.")
    alert.evaluate("element => { element.textContent = '' }")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(alert).to_contain_text("Too many failed sign-ins. Try again after")
    alert.evaluate("element => { element.textContent = '' }")
    tab.sign_in(person)
    expect(alert).to_contain_text("Too many failed sign-ins. Try again after")
    expect(page).to_have_url(f"{server.url}/staff/sign-in")
    assert_accessible(page, "sign-in, locked account")
    tab.check()


def test_an_agent_cannot_open_accounts_but_works_their_wards_requests(
    server: ServeProcess, browser: Any
) -> None:
    from playwright.sync_api import expect

    agent = add_account(server, "lindiwe@city.example", ["agent"], wards=["115"])
    _run(_seed(_database_url(server), "CT-AAAA", "115", "+27821234567"))
    _run(_seed(_database_url(server), "CT-BBBB", "9", "+27829999999"))
    tab = Console(browser, server)
    page = tab.page
    tab.goto("/staff/sign-in")
    tab.sign_in(agent)
    expect(page).to_have_url(f"{server.url}/staff/")
    nav = page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link")).to_have_text(
        ["Home", "Support queue", "Service requests", "Change my password"]
    )

    tab.goto("/staff/accounts")
    expect(page.get_by_role("heading", name="You do not have access")).to_be_visible()
    expect(page.locator("#no-access-why")).to_have_text(
        "Your roles do not allow this (accounts.manage)."
    )
    expect(page.locator("#create-form")).to_be_hidden()
    expect(page).to_have_title(re.compile(r"^You do not have access · "))
    assert_accessible(page, "accounts, no access")

    # The analytics page checks its permission in its own script: the same page, title and all.
    tab.goto("/staff/analytics")
    expect(page.locator("#no-access-why")).to_have_text("This page is for analysts.")
    expect(page).to_have_title(re.compile(r"^You do not have access · "))
    expect(page.locator("#analytics-filter")).to_be_hidden()

    tab.goto("/staff/requests")
    table = page.get_by_role("table")
    row = table.get_by_role("row").filter(has_text="CT-AAAA")
    expect(row).to_contain_text("********4567")
    # Another ward's request is not shown to a ward-scoped agent.
    expect(table).not_to_contain_text("CT-BBBB")
    assert_accessible(page, "requests")
    page.screenshot(path=str(ARTIFACTS / "staff-requests.png"), full_page=True)
    row.get_by_role("button", name="Reveal phone of CT-AAAA").click()
    expect(row).to_contain_text("+27821234567")

    row.get_by_role("button", name="Change the status of CT-AAAA").click()
    change = page.locator("#change-form")
    expect(change.get_by_label("New status")).to_be_focused()
    change.get_by_label("New status").select_option("closed")
    change.get_by_label("Notes for the resident").fill("Fixed on Tuesday.")
    change.get_by_role("button", name="Save the status").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(table.get_by_role("row").filter(has_text="CT-AAAA")).to_contain_text("Fixed on Tuesday.")
    page.get_by_label("Status", exact=True).select_option("open")
    page.get_by_role("button", name="Show requests").click()
    expect(table).to_contain_text("Nothing to show.")
    assert_accessible(page, "requests, filtered")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/staff/sign-in")
    tab.goto("/staff/requests")
    expect(page).to_have_url(f"{server.url}/staff/sign-in?next=%2Fstaff%2Frequests")
    tab.check()
