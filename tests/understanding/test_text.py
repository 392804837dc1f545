import pytest

from forms_runtime.understanding.text import clean_text, fold


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Main   Road  ", "Main Road"),
        ("Hi\u202e there\u200b", "Hi there"),  # bidi override, zero-width space
        ("a\u200db\ufeffc", "abc"),  # zero-width joiner, byte-order mark
        ("line one\r\nline two", "line one line two"),
        ("tab\tand\u00a0nbsp", "tab and nbsp"),
        ("bell\x07 null\x00", "bell null"),
        ("e\u0301", "\u00e9"),  # NFC: e + combining acute becomes é
        ("\ud800lone surrogate", "lone surrogate"),
        ("", ""),
        ("   ", ""),
        ("uMsombuluko", "uMsombuluko"),
        ("مرحبا بالعالم", "مرحبا بالعالم"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_clean_text_multiline_keeps_paragraphs_but_no_runs_of_blank_lines() -> None:
    raw = " first  line \r\nsecond\u2028third\n\n\n\n\nlast "
    assert clean_text(raw, multiline=True) == "first line\nsecond\nthird\n\nlast"


def test_clean_text_cuts_to_max_length_and_trims() -> None:
    assert clean_text("abc def", 4) == "abc"
    assert clean_text("x" * 10_000, 4000) == "x" * 4000
    assert clean_text("abc", 0) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Slaggat, ASSEBLIEF!", "slaggat asseblief"),
        ("  Désember -- 3rd!! ", "desember 3rd"),
        ("Tweeëntwintig", "tweeentwintig"),
        ("don't", "dont"),
        ("'n Slaggat", "n slaggat"),
        ("u-Disemba", "u disemba"),
        ("Straße", "strasse"),
        ("２ 👍", "2"),  # full-width digit, emoji dropped
        ("(2)", "2"),
        ("ÇA VA?", "ca va"),
        ("", ""),
    ],
)
def test_fold(raw: str, expected: str) -> None:
    assert fold(raw) == expected


def test_fold_is_idempotent_on_examples() -> None:
    for raw in ("Désember", "Ngũgĩ wa Thiong’o", "isiZulu", "3/12/2026"):
        assert fold(fold(raw)) == fold(raw)
