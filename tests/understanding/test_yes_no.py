import pytest

from forms_runtime.understanding.yes_no import parse_yes_no

YES = [
    # en
    "yes", "Yes", "YES!", "y", "yeah", "yep", "yup", "yess", "yesss", "ok", "okay", "OK.", "sure",
    "yes please", "Yes it is", "of course", "correct",
    # af
    "ja", "Ja", "jaa", "jaaaa", "jip", "ja asseblief", "ja dankie", "seker",
    # zu
    "yebo", "Yebo!", "yebo baba", "ngiyavuma", "kulungile", "impela",
    # xh
    "ewe", "Ewe", "ee", "ndiyavuma", "ewe kunjalo",
    # emoji, with skin tones and variation selectors
    "👍", "👍🏽", "✅", "✔️", "👌",
    # a copied numbered option
    "1 yes", "1. Yes",
]  # fmt: skip
NO = [
    # en
    "no", "No", "NO!!", "n", "nope", "nah", "noooo", "no thanks", "no thank you", "not really",
    "no way", "no its not",
    # af
    "nee", "Nee", "neeee", "nie", "nee dankie", "glad nie", "nooit",
    # zu
    "cha", "Cha", "qha", "hhayi", "cha baba", "angifuni",
    # xh
    "hayi", "Hayi", "hayi bo", "andifuni",
    # emoji
    "👎", "❌", "👎🏿",
    "2. No",
]  # fmt: skip
NEITHER = [
    "", "   ", "maybe", "miskien", "not sure", "yes and no", "yes no", "no, yes", "ja nee",
    "hayibo", "on", "e", "1", "2", "the", "I saw it yesterday near the shops, it is big",
    "yes 👎", "👍👎", "🙂", "<b>yes</b> or no", "yesterday", "nothing", "know", "eyes",
]  # fmt: skip


@pytest.mark.parametrize("raw", YES)
def test_yes(raw: str) -> None:
    assert parse_yes_no(raw) is True


@pytest.mark.parametrize("raw", NO)
def test_no(raw: str) -> None:
    assert parse_yes_no(raw) is False


@pytest.mark.parametrize("raw", NEITHER)
def test_neither(raw: str) -> None:
    assert parse_yes_no(raw) is None
