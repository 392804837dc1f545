"""USSD screens: paged within 182 characters, choices numbered once, a last screen without "00"."""

from __future__ import annotations

from channels.ussd_screens import MAX_SCREEN, paginate
from forms_runtime.sms import is_gsm7

LONG = " ".join(f"Sentence number {n} says a little more about the problem." for n in range(12))
CHOICES = [(f"id{n}", f"Choice {n}") for n in range(1, 13)]


def _all_pages(text: str, choices: list[tuple[str, str]], locale: str = "en") -> list[str]:
    pages = [paginate(text, choices, 0, locale)]
    while pages[-1].more:
        pages.append(paginate(text, choices, len(pages), locale))
    return [p.text for p in pages]


def test_long_text_and_choices_are_paged_within_a_screen_each() -> None:
    pages = _all_pages(LONG, CHOICES)
    assert len(pages) > 2
    assert all(len(page) <= MAX_SCREEN and is_gsm7(page) for page in pages)
    assert all(page.endswith("00 More\n0 Back") for page in pages[:-1])
    assert pages[-1].endswith("0 Back") and "00 More" not in pages[-1]
    # Every choice once, with its own number, whichever page it is on.
    numbered = [line for page in pages for line in page.splitlines() if line[:1].isdigit()]
    assert [line for line in numbered if not line.startswith("0")] == [
        f"{n} Choice {n}" for n in range(1, 13)
    ]


def test_a_last_screen_never_offers_more() -> None:
    """After "END" the gateway takes no input: no "00 More", and the caller learns that the
    text did not fit (the dialogue sends it whole by SMS)."""
    page = paginate(LONG, [], 0, "en", back=False, more=False)
    assert len(page.text) <= MAX_SCREEN
    assert "00" not in page.text and "Back" not in page.text
    assert page.more and LONG.startswith(page.text)
    short = paginate("Thank you.", [], 0, "en", back=False, more=False)
    assert (short.text, short.more) == ("Thank you.", False)


def test_footer_lines_are_in_the_residents_language() -> None:
    pages = _all_pages(LONG, CHOICES, "zu")
    assert pages[0].endswith("00 Okunye\n0 Emuva")
