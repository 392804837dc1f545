"""A real browser (Debian's Chromium, driven by Playwright) reports a pothole in the web chat.

The page is served by a real ``citybot serve``; the test taps buttons and the location button the
way a resident on a phone would, and saves a screenshot to tests/artifacts/webchat.png. axe-core
(vendored, see tests/web/axe_audit.py) checks every screen on the way against WCAG 2.1 AA and its
best practices, and the offline state and an isiZulu chat on their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.axe_audit import assert_accessible, serve_axe
from tests.web.serve_process import ServeProcess

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="browser test: /usr/bin/chromium is absent (CI installs it)"
    ),
]


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def contrast(css_colours: list[str]) -> float:
    """WCAG's contrast ratio of two opaque ``rgb(r, g, b)`` colours."""

    def luminance(css: str) -> float:
        channels = [int(x) / 255 for x in css[css.index("(") + 1 : -1].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted(map(luminance, css_colours), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    serve = ServeProcess(tmp_path)
    serve.start()
    yield serve
    serve.stop()


def test_a_resident_reports_a_pothole_in_the_browser(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(
            **PHONE,
            device_scale_factor=2,
            locale="en-ZA",
            geolocation={"latitude": -34.0363, "longitude": 18.6776},
            permissions=["geolocation"],
        )
        serve_axe(context, server.url)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # A script or style the page's own policy refuses shows up here (axe must not need any).
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        # Everything the page loads comes from its own origin: no CDN, no font or script elsewhere.
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(server.url + "/")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_role("button", name="See all services")).to_be_visible()
        # The conversation is a log (a polite live region: new messages are read out) in main.
        expect(page.get_by_role("main").get_by_role("log", name="Conversation")).to_be_visible()
        expect(page.get_by_role("log")).to_contain_text("City: Hello.")
        assert_accessible(page, "first load")
        # axe leaves placeholders out, and a resident reads this one before typing anything.
        placeholder = page.evaluate(
            """[getComputedStyle(document.getElementById("text"), "::placeholder").color,
                getComputedStyle(document.getElementById("text")).backgroundColor]"""
        )
        assert contrast(placeholder) >= 4.5, placeholder
        # Focus follows what the eye sees, top to bottom; the log itself takes focus so that a
        # keyboard can scroll it once its old buttons are disabled.
        page.locator("#language").focus()
        order = []
        for _ in range(4):
            page.keyboard.press("Tab")
            order.append(
                page.evaluate("document.activeElement.id || document.activeElement.innerText")
            )
        assert order == ["log", "See all services", "text", "send"]

        page.get_by_label("Type your message").fill("pothole")
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_role("log")).to_contain_text("You: pothole")
        assert_accessible(page, "privacy notice and service choice")
        page.get_by_role("button", name="Pothole or road damage").click()

        replies = page.locator(".bubble.bot, .review")
        seen: set[str] = set()
        for _ in range(20):
            expect(page.locator("#send")).to_be_enabled()
            if page.locator(".reference").count():
                break
            shown = replies.count()
            location = page.locator("#location")
            review = page.locator(".review-actions .primary:enabled")
            options = page.locator(".options").last.locator("button:enabled")
            last_said = replies.last.inner_text()
            if "Do you agree to share your contact details" in last_said:
                screen = "consent question"
            elif location.is_visible():
                screen = "location question"
            elif review.count():
                screen = "review"
            elif options.count():
                screen = "choice question"
            else:
                screen = "text question"
            seen.add(screen)
            assert_accessible(page, f"{screen} ({last_said[:60]!r})")
            if location.is_visible():
                location.click()
            elif review.count():
                review.last.click()
            elif options.count():
                labels = options.all_inner_texts()
                # "No" keeps personal questions out; otherwise skip, else the first option.
                pick = next((x for x in ("No", "Skip this question") if x in labels), labels[0])
                options.filter(has_text=pick).first.click()
            else:
                page.get_by_label("Type your message").fill("Next to the school gate")
                page.keyboard.press("Enter")
            # One answer at a time: wait for the bot's reply before looking again.
            expect(replies).not_to_have_count(shown)

        expect(page.locator(".reference")).to_contain_text("CT-")
        assert {"consent question", "choice question", "location question", "review"} <= seen
        assert page.get_by_text("My location").count() >= 1, "the location button was used"
        assert_accessible(page, "report filed")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "webchat.png"), full_page=False)

        # The language picker switches the page and the bot, and sets <html lang>.
        page.locator("#language").select_option("zu")
        expect(page.locator("html")).to_have_attribute("lang", "zu")
        expect(page.locator("#send")).to_be_enabled()
        assert_accessible(page, "after switching to isiZulu")
        # A reload shows the conversation so far from the browser's storage.
        page.reload()
        expect(page.locator(".reference")).to_contain_text("CT-")
        assert_accessible(page, "reloaded conversation")
        assert not errors, errors
        assert [u for u in requested if not u.startswith(server.url + "/")] == []
        browser.close()


def test_the_offline_state_is_accessible(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(**PHONE, locale="en-ZA")
        serve_axe(context, server.url)
        page = context.new_page()
        page.goto(server.url + "/")
        expect(page.get_by_role("button", name="See all services")).to_be_visible()
        assert_accessible(page, "first load")  # loads axe while the page is still online
        context.set_offline(True)
        page.get_by_label("Type your message").fill("pothole")
        page.keyboard.press("Enter")
        # The page retries for about six seconds, then says so in its status line.
        expect(page.get_by_role("status")).to_contain_text(
            "Your message was not sent", timeout=15_000
        )
        expect(page.locator("#send")).to_be_enabled()
        assert_accessible(page, "offline")
        browser.close()


def test_the_chat_in_isizulu_is_accessible(server: ServeProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        # A browser set to isiZulu: the page starts in isiZulu without being asked.
        context = browser.new_context(**PHONE, locale="zu-ZA")
        serve_axe(context, server.url)
        page = context.new_page()
        page.goto(server.url + "/")
        expect(page.locator("html")).to_have_attribute("lang", "zu")
        texts = page.evaluate("fetch('/webchat/texts').then(r => r.json())")["zu"]
        assert (texts["you"], texts["city"]) != ("You", "City"), "the speakers are translated"
        log = page.get_by_role("main").get_by_role("log", name=texts["conversation"])
        expect(log).to_contain_text(texts["city"] + ": " + texts["welcome"][:20])
        assert_accessible(page, "isiZulu first load")

        page.get_by_role("button", name=texts["menu"]).click()
        expect(log).to_contain_text(texts["you"] + ": " + texts["menu"])
        expect(page.locator(".options").last.locator("button:enabled").first).to_be_visible()
        assert_accessible(page, "isiZulu service menu")
        browser.close()


def test_export_my_data_gives_a_link_that_downloads_the_export(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    serve = ServeProcess(tmp_path)
    # The page's own address, as in production: only links to it become links in the chat.
    serve.env["CITYBOT_PUBLIC_URL"] = serve.url
    serve.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context(**PHONE, locale="en-ZA", accept_downloads=True)
            serve_axe(context, serve.url)
            page = context.new_page()
            page.goto(serve.url + "/")
            expect(page.get_by_role("button", name="See all services")).to_be_visible()
            page.get_by_label("Type your message").fill("export my data")
            page.keyboard.press("Enter")
            link = page.get_by_role("link", name=serve.url + "/my-data/")
            expect(link).to_be_visible()
            assert_accessible(page, "export link")
            with page.expect_download() as download:
                link.click()
            saved = tmp_path / "my-data.json"
            download.value.save_as(saved)
            record = json.loads(saved.read_text())
            assert record["format"] == "citybot resident export v1"
            assert [a["channel"] for a in record["addresses"]] == ["webchat"]
            browser.close()
    finally:
        serve.stop()
