"""Whatever a resident sends, no reader raises, and each returns the type it promises."""

from collections.abc import Callable
from datetime import date

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from forms_runtime.understanding import (
    ChoiceMatch,
    ChoiceOption,
    Navigation,
    clean_text,
    fold,
    match_choice,
    match_choices,
    normalise_phone,
    parse_date,
    parse_email,
    parse_name,
    parse_navigation,
    parse_number,
    parse_yes_no,
)

OPTIONS = (
    ChoiceOption("pothole", ("Pothole", "Slaggat", "Umgodi")),
    ChoiceOption("leak", ("Water leak", "Waterlek")),
    ChoiceOption("other", ("Other", "Ander", "Okunye")),
)

HOSTILE = [
    "",
    "x" * 10_000,
    "🙂" * 3000,
    "\u202eevil\u202c \u200b\u200d\ufeff",
    "مرحبا بالعالم שלום",
    "\x00\x01\x07\x1b[31mred\x1b[0m\r\n\t",
    "<script>alert('x')</script>",
    "'; DROP TABLE answers; --",
    "\ud800\udfff",
    "1" * 5000,
    "9" * 400 + "/" + "9" * 400,
    "-" * 1000,
    "٣/١٢/٢٠٢٦",
    "change " + "9" * 50,
    "a@" * 500,
]

TEXT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
    st.text(alphabet="0123456789 ,./-+()#", max_size=40),
    st.sampled_from(HOSTILE),
)
Test = Callable[..., None]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _examples(test: Test) -> Test:
    for text in HOSTILE:
        test = example(text)(test)
    return test


@FAST
@given(TEXT)
@_examples
def test_clean_text_never_raises_and_is_clean(text: str) -> None:
    for multiline in (False, True):
        cleaned = clean_text(text, 4000, multiline=multiline)
        assert len(cleaned) <= 4000
        assert cleaned == cleaned.strip()
        assert "\r" not in cleaned and "\x00" not in cleaned and "\u202e" not in cleaned
        assert multiline or "\n" not in cleaned
        cleaned.encode("utf-8")  # no lone surrogates survive


@FAST
@given(TEXT)
@_examples
def test_fold_never_raises_and_is_stable(text: str) -> None:
    folded = fold(clean_text(text))
    assert folded == folded.strip()
    assert "  " not in folded
    assert folded == folded.lower() or not folded.isascii()
    assert fold(folded) == folded


@FAST
@given(TEXT)
@_examples
def test_choices_never_raise(text: str) -> None:
    match = match_choice(text, OPTIONS)
    assert isinstance(match, ChoiceMatch)
    ids = {option.id for option in OPTIONS}
    assert match.option_id is None or match.option_id in ids
    assert set(match.candidates) <= ids
    picked, unknown = match_choices(text, OPTIONS)
    assert set(picked) <= ids
    assert list(picked) == sorted(set(picked), key=[o.id for o in OPTIONS].index)
    assert all(isinstance(part, str) for part in unknown)


@FAST
@given(TEXT)
@_examples
def test_yes_no_never_raises(text: str) -> None:
    assert parse_yes_no(text) in (True, False, None)


def _date_examples(test: Test) -> Test:
    for text in HOSTILE:
        test = example(text, date(2026, 3, 4))(test)
    return test


@FAST
@given(TEXT, st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31)))
@_date_examples
def test_dates_never_raise(text: str, today: date) -> None:
    found = parse_date(text, today)
    assert found is None or isinstance(found, date)


@FAST
@given(TEXT)
@_examples
def test_numbers_never_raise(text: str) -> None:
    for locale in ("en", "af"):
        value = parse_number(text, locale)
        assert value is None or isinstance(value, float)


@FAST
@given(TEXT)
@_examples
def test_contact_readers_never_raise(text: str) -> None:
    phone = normalise_phone(text)
    assert phone is None or (phone.startswith("+") and phone[1:].isdigit())
    email = parse_email(text)
    assert email is None or (email.count("@") == 1 and " " not in email)
    name = parse_name(text)
    assert name is None or (0 < len(name) <= 100 and not any(ch.isdigit() for ch in name))


@FAST
@given(TEXT)
@_examples
def test_navigation_never_raises(text: str) -> None:
    found = parse_navigation(text)
    assert found is None or isinstance(found, Navigation)
