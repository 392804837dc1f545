"""A real browser (Debian's Chromium, driven by Playwright) reports a pothole in the web chat.

The page is served by a real ``citybot serve``; the test taps buttons and the location button the
way a resident on a phone would, and saves a screenshot to tests/artifacts/webchat.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="en-ZA",
            geolocation={"latitude": -34.0363, "longitude": 18.6776},
            permissions=["geolocation"],
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_role("button", name="See all services")).to_be_visible()

        page.get_by_label("Type your message").fill("pothole")
        page.get_by_role("button", name="Send", exact=True).click()
        page.get_by_role("button", name="Pothole or road damage").click()

        replies = page.locator(".bubble.bot, .review")
        for _ in range(20):
            expect(page.locator("#send")).to_be_enabled()
            if page.locator(".reference").count():
                break
            shown = replies.count()
            location = page.locator("#location")
            review = page.locator(".review-actions .primary:enabled")
            options = page.locator(".options").last.locator("button:enabled")
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
        assert page.locator(".review").count() >= 1, "the review screen was shown"
        assert page.get_by_text("My location").count() >= 1, "the location button was used"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "webchat.png"), full_page=False)

        # The language picker switches the page and the bot, and sets <html lang>.
        page.locator("#language").select_option("zu")
        expect(page.locator("html")).to_have_attribute("lang", "zu")
        expect(page.locator("#send")).to_be_enabled()
        assert not errors, errors
        browser.close()
