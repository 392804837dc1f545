"""Every log line the suite's tests capture is read for secrets: none may appear (issue 15).

What counts as a secret: a Telegram bot token (``<digits>:<35 url-safe characters>``, and the
fakes' own), the fake Twilio auth token and Telegram webhook secret, an ``Authorization`` header's
value, and a full phone number (``+27`` and nine digits; logs carry masked ones such as
``+2782*****67``). ``tests/conftest.py`` calls ``scan`` on each test's captured log and fails the
session if anything was found, naming the test and the line.
"""

from __future__ import annotations

import re

__all__ = ["PATTERNS", "scan"]

PATTERNS: dict[str, re.Pattern[str]] = {
    "Telegram bot token": re.compile(r"(?<!\d)\d{6,12}:[A-Za-z0-9_-]{30,}|7000000001:AAFake"),
    "Twilio auth token": re.compile(r"test-auth-token-0123456789abcdef"),
    "Telegram webhook secret": re.compile(r"tg-secret-0123456789"),
    "Authorization header": re.compile(r"(?i)authorization['\"]?\s*[:=]\s*['\"]?(bearer|basic)\s"),
    "full phone number": re.compile(r"(?<![\d*])\+27\d{9}(?!\d)"),
}


def scan(text: str) -> list[tuple[str, str]]:
    """(what, line) for each line of ``text`` that carries a secret."""
    found: list[tuple[str, str]] = []
    for line in text.splitlines():
        for what, pattern in PATTERNS.items():
            if pattern.search(line):
                found.append((what, line[:300]))
                break
    return found
