import pytest

from forms_runtime.understanding.navigation import (
    NAVIGATION_KINDS,
    NAVIGATION_WORDS,
    Navigation,
    parse_navigation,
)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        # back
        ("back", "back"), ("BACK", "back"), ("go back", "back"), ("previous", "back"),
        ("terug", "back"), ("Gaan terug", "back"), ("emuva", "back"), ("buyela emuva", "back"),
        ("emva", "back"), ("buyela umva", "back"),
        # skip
        ("skip", "skip"), ("Skip!", "skip"), ("slaan oor", "skip"), ("oorslaan", "skip"),
        ("yeqa", "skip"), ("eqa", "skip"), ("tsiba", "skip"),
        # cancel
        ("cancel", "cancel"), ("cancle", "cancel"), ("kanselleer", "cancel"),
        ("khansela", "cancel"), ("rhoxisa", "cancel"), ("yeka", "cancel"),
        # restart
        ("restart", "restart"), ("start again", "restart"), ("start over", "restart"),
        ("begin weer", "restart"), ("begin oor", "restart"), ("qala kabusha", "restart"),
        ("qala phansi", "restart"), ("qala kwakhona", "restart"), ("qala ngokutsha", "restart"),
        # send
        ("send", "send"), ("submit", "send"), ("confirm", "send"), ("stuur", "send"),
        ("dien in", "send"), ("thumela", "send"),
    ],
)  # fmt: skip
def test_navigation_words_in_every_locale(raw: str, kind: str) -> None:
    assert parse_navigation(raw) == Navigation(kind)


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("change 2", 2), ("Change 2.", 2), ("2 change", 2), ("change number 3", 3),
        ("edit 12", 12), ("verander 2", 2), ("verander nommer 4", 4), ("shintsha 2", 2),
        ("tshintsha 5", 5), ("change two", 2), ("verander twee", 2), ("change", None),
    ],
)  # fmt: skip
def test_change_with_a_number(raw: str, number: int | None) -> None:
    assert parse_navigation(raw) == Navigation("change", number=number)


@pytest.mark.parametrize(
    ("raw", "locale"),
    [
        ("english", "en"), ("English", "en"), ("engels", "en"), ("isiNgisi", "en"),
        ("afrikaans", "af"), ("isiBhunu", "af"), ("isizulu", "zu"), ("Zulu", "zu"),
        ("zoeloe", "zu"), ("isiXhosa", "xh"), ("xhosa", "xh"),
    ],
)  # fmt: skip
def test_language_names(raw: str, locale: str) -> None:
    assert parse_navigation(raw) == Navigation("language", locale=locale)


@pytest.mark.parametrize(
    "raw",
    [
        "", "  ", "stop", "STOP", "at the back of the house", "skip the queue", "back road",
        "change 0", "change 100", "change 2 3", "change it", "my back hurts", "yes", "2",
        "send help", "x" * 5000,
    ],
)  # fmt: skip
def test_ordinary_answers_are_not_navigation(raw: str) -> None:
    assert parse_navigation(raw) is None


def test_every_canonical_word_is_understood_in_its_own_locale() -> None:
    for locale in ("en", "af", "zu", "xh"):
        words = NAVIGATION_WORDS[locale]
        assert set(words) == set(NAVIGATION_KINDS) - {"language"}
        for kind, word in words.items():
            assert parse_navigation(word) == Navigation(kind), (locale, word)
            assert parse_navigation(word.upper()) == Navigation(kind), (locale, word)
