"""The secrets check that reads every captured log line of the suite (tests/log_secrets.py)."""

from __future__ import annotations

from tests.log_secrets import scan


def test_it_finds_each_kind_of_secret_and_passes_masked_ones() -> None:
    lines = [
        "sent to +27831234567",
        "bot 7000000001:AAFakeTokenForTests answered",
        "calling https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe",
        "headers {'Authorization': 'Basic QUN4eHg6dG9rZW4='}",
        "twilio token test-auth-token-0123456789abcdef",
        "webhook secret tg-secret-0123456789",
    ]
    assert [what for what, _ in scan("\n".join(lines))] == [
        "full phone number",
        "Telegram bot token",
        "Telegram bot token",
        "Authorization header",
        "Twilio auth token",
        "Telegram webhook secret",
    ]
    masked = (
        "sent to +2783*****67, reference CT-7K2M9Q, at 2026-12-04T09:00:00+00:00 id 12345678901"
    )
    assert scan(masked) == []
