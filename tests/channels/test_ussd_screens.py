"""USSD screens: paged within 182 characters, choices numbered once, a last screen without "00"."""

from __future__ import annotations

from channels.ussd_screens import MAX_SCREEN, paginate
from forms_runtime.sms import GSM7_EXTENDED, is_gsm7, segments

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


def test_what_a_resident_typed_is_shown_in_one_septet_characters() -> None:
    """An emoji would switch the whole screen to UCS-2 and an extension character costs two
    septets: a screen of 182 characters must be 182 on the handset."""
    typed = "Water \U0001f4a7 runs {near} the clinic \u2014 every day ~ since Monday \u20ac5 [sic]"
    page = paginate(f"Check your answers:\n1. Question: {typed}", [("send", "Send")], 0, "en")
    assert is_gsm7(page.text) and not set(page.text) & GSM7_EXTENDED, page.text
    assert "Water ? runs (near) the clinic - every day - since Monday EUR5 (sic)" in page.text
    # At the limit: 182 characters of extension characters still fit, as one screen each.
    braces = paginate("{" * 400, [], 0, "en", back=False)
    assert len(braces.text) <= MAX_SCREEN and segments(braces.text[:160]) == 1
