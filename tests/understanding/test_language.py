"""detect_language: af, zu and xh from a resident's first words; None for English or when unsure.

Issue 10, defect 5. The labelled sample (language_sample.tsv) is shared with
bench/language_detection.py, which prints the same accuracy and the time per call.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forms_runtime import i18n
from forms_runtime.understanding import LanguageGuess, detect_language, fold
from forms_runtime.understanding.language import DETECTED_LOCALES, MIN_CONFIDENCE

SAMPLE = Path(__file__).resolve().parent / "language_sample.tsv"


def _locale(text: str) -> str | None:
    guess = detect_language(text)
    return guess.locale if guess else None


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("Ek wil 'n slaggat aanmeld", "af"),
        ("Sawubona, amanzi ayaphuma emgwaqweni", "zu"),
        ("Molo, amanzi ayavuza esitalatweni", "xh"),
    ],
)
def test_the_examples_of_the_issue(text: str, locale: str) -> None:
    assert _locale(text) == locale


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("Sawubona", "zu"),
        ("Sanibonani!", "zu"),
        ("Ngiyabonga", "zu"),
        ("Molo", "xh"),
        ("Molweni", "xh"),
        ("Enkosi", "xh"),
        ("Goeiemôre", "af"),
        ("Goeie more", "af"),
        ("Dankie", "af"),
        # A greeting English and Afrikaans share, or a word too short to tell, is no evidence.
        ("Hallo", None),
        ("Hi", None),
        ("Ja", None),
        ("ok", None),
    ],
)
def test_short_greetings(text: str, locale: str | None) -> None:
    assert _locale(text) == locale


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("Sawbona", "zu"),
        ("ngiyabong kakhulu", "zu"),
        ("MOLO TATA", "xh"),
        ("ek wil n slagat aanmelt", "af"),
        ("asseblif help", "af"),
        ("ndicela uncdo", "xh"),
    ],
)
def test_typos_and_sms_spellings(text: str, locale: str) -> None:
    assert _locale(text) == locale


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        # A language with English nouns in it is still that language...
        ("Ek wil 'n water leak report", "af"),
        ("Ngicela ukubika i-pothole emgwaqweni", "zu"),
        ("Molo, i-streetlight esitratweni sam ayisebenzi", "xh"),
        # ...while English with a greeting in it stays English.
        ("Sawubona, there is a big water leak on Main Road and nobody is fixing it", None),
        ("Molo, the streetlights in our street have been off for two weeks", None),
        ("dankie, but the pothole is still not fixed after a month", None),
    ],
)
def test_mixed_text(text: str, locale: str | None) -> None:
    assert _locale(text) == locale


def test_isizulu_and_isixhosa_are_told_apart_only_by_words_of_their_own() -> None:
    # "Amanzi ayavuza" is the same in both: no guess rather than a coin toss.
    assert _locale("Amanzi ayavuza") is None
    assert _locale("Amanzi ayavuza, ngicela usizo") == "zu"
    assert _locale("Amanzi ayavuza, ndicela uncedo") == "xh"


@pytest.mark.parametrize(
    "text",
    ["Khayelitsha", "Umlazi", "My name is Sipho Dlamini", "I live in Gugulethu", "0821234567"],
)
def test_names_and_places_are_not_a_language(text: str) -> None:
    assert detect_language(text) is None


def test_a_guess_says_why() -> None:
    guess = detect_language("Sawubona, amanzi ayaphuma emgwaqweni")
    assert isinstance(guess, LanguageGuess)
    assert {"sawubona", "emgwaqweni"} <= set(guess.evidence)
    assert set(guess.evidence) <= set(fold("Sawubona, amanzi ayaphuma emgwaqweni").split())
    assert MIN_CONFIDENCE <= guess.confidence <= 1


def _sample() -> list[tuple[str, str]]:
    rows = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            label, text = line.split("\t", 1)
            rows.append((label, text))
    return rows


def test_the_labelled_sample() -> None:
    sample = _sample()
    for label in ("af", "zu", "xh", "en"):
        texts = [text for lab, text in sample if lab == label]
        assert len(texts) >= 40, label
        wanted = None if label == "en" else label
        right = sum(_locale(text) == wanted for text in texts)
        assert right / len(texts) >= 0.95, label
    # Never the wrong one of the three: a miss is "unsure", not another language.
    wrong = [
        (lab, t) for lab, t in sample if _locale(t) not in (None, lab if lab != "en" else None)
    ]
    assert wrong == []


def test_the_bot_texts_in_each_catalog_are_never_taken_for_another_language() -> None:
    # Text not written for the detector: the catalogs' translations and their English sources.
    for locale in DETECTED_LOCALES:
        guesses = [_locale(text) for text in i18n.catalog(locale).values()]
        wrong = [g for g in guesses if g not in (None, locale)]
        assert len(wrong) <= 0.01 * len(guesses), (locale, wrong)
        assert guesses.count(locale) >= 0.25 * len(guesses), locale
    assert [t for t in i18n.catalog("af") if detect_language(t)] == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_guess_or_none(text: str) -> None:
    guess = detect_language(text)
    if guess is not None:
        assert guess.locale in DETECTED_LOCALES
        assert MIN_CONFIDENCE <= guess.confidence <= 1
        assert guess.evidence


def test_only_the_first_words_are_read() -> None:
    english = "there is a leak in the road " * 10
    assert detect_language(english + "sawubona " * 1000) is None
