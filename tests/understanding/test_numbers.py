import pytest

from forms_runtime.understanding.numbers import NUMBER_WORDS, parse_number


@pytest.mark.parametrize(
    ("raw", "locale", "expected"),
    [
        ("5", "en", 5.0),
        ("5.5", "en", 5.5),
        ("5,5", "af", 5.5),
        ("5,5", "en", 5.5),
        ("1 000", "en", 1000.0),
        ("1 000", "af", 1000.0),
        ("-3", "en", -3.0),
        ("\u22124,25", "af", -4.25),
        ("about 5", "en", 5.0),
        ("omtrent 5 meter", "af", 5.0),
        ("R500", "en", 500.0),
        ("1,500", "en", 1500.0),  # English thousands comma
        ("1,500", "af", 1.5),  # South African decimal comma
        ("1,234.5", "en", 1234.5),
        ("1.234,5", "af", 1234.5),
        ("5 or 6", "en", 5.0),
        ("five", "en", 5.0),
        ("twenty five", "en", 25.0),
        ("twenty-five", "en", 25.0),
        ("vyf", "af", 5.0),
        ("vyfentwintig", "af", 25.0),
        ("tweeëntwintig", "af", 22.0),
        ("vyf en twintig", "af", 25.0),
        ("about twelve", "en", 12.0),
        ("kuhlanu", "zu", 5.0),
        ("ishumi", "xh", 10.0),
        ("zintathu", "xh", 3.0),
        ("zero", "en", 0.0),
    ],
)
def test_parse_number(raw: str, locale: str, expected: float) -> None:
    assert parse_number(raw, locale) == expected


@pytest.mark.parametrize("raw", ["", "   ", "many", "baie", "none of them", "-", "..", "👍"])
def test_parse_number_rejects_text_without_a_number(raw: str) -> None:
    assert parse_number(raw, "en") is None
    assert parse_number(raw, "af") is None


def test_a_hyphen_inside_a_word_is_not_a_minus() -> None:
    # isiZulu writes "zi-3" for "the 3rd"; that is three, not minus three.
    assert parse_number("zi-3", "zu") == 3.0


def test_number_word() -> None:
    assert NUMBER_WORDS.get("sewe") == 7
    assert NUMBER_WORDS.get("seven") == 7
    assert NUMBER_WORDS.get("banana") is None
