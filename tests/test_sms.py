"""SMS alphabet and segment arithmetic against known values (GSM 03.38, 3GPP TS 23.040)."""

from __future__ import annotations

import pytest

from forms_runtime.sms import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    encoding,
    is_gsm7,
    segments,
    to_gsm7,
    ucs2_forcing_chars,
)


def test_the_alphabet_has_the_sizes_of_the_standard() -> None:
    # 128 code points minus the escape; 10 extension characters (form feed included).
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENDED) == 10
    assert not GSM7_BASIC & GSM7_EXTENDED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("é" * 160, 1),  # é is in the GSM-7 basic set
        ("€" * 80, 1),  # extension characters count twice
        ("€" * 81, 2),
        ("ş" * 70, 1),
        ("ş" * 71, 2),
        ("ş" * 134, 2),
        ("ş" * 135, 3),
        ("😀" * 35, 1),  # a surrogate pair is two UCS-2 units
        ("😀" * 36, 2),
    ],
)
def test_segments(text: str, expected: int) -> None:
    assert segments(text) == expected


def test_an_escape_sequence_is_never_split_across_segments() -> None:
    # 306 septets would fill two parts of 153 exactly, but the euro's two septets do not fit
    # behind 152 characters, so it moves to part two and pushes one character into part three.
    assert segments("a" * 152 + "€" + "a" * 152) == 3
    assert segments("a" * 151 + "€" + "a" * 153) == 2


def test_a_surrogate_pair_is_never_split_across_segments() -> None:
    assert segments("ş" * 66 + "😀" + "ş" * 66) == 3
    assert segments("ş" * 65 + "😀" + "ş" * 67) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Where is the pothole?", "GSM-7"),
        ("Kom ons gaan {na} [die] winkel €5", "GSM-7"),
        ("It’s broken", "UCS-2"),
        ("Waar is dit, sê?", "UCS-2"),
        ("Ngiyabonga 😀", "UCS-2"),
    ],
)
def test_encoding(text: str, expected: str) -> None:
    assert encoding(text) == expected
    assert is_gsm7(text) is (expected == "GSM-7")


def test_to_gsm7_replaces_typography_with_plain_characters() -> None:
    text = "“It’s here” – 3\u00a0km… • ok\u200b"
    assert to_gsm7(text) == '"It\'s here" - 3 km... * ok'
    assert is_gsm7(to_gsm7(text))


def test_to_gsm7_composes_combining_accents_and_keeps_what_it_cannot_map() -> None:
    assert to_gsm7("cafe\u0301") == "café"
    assert to_gsm7("sê 😀") == "sê 😀"


def test_ucs2_forcing_chars_names_only_what_has_an_equivalent() -> None:
    assert ucs2_forcing_chars("It’s a “test” – sê’") == ["’", "“", "”", "–"]
    assert ucs2_forcing_chars("Waar is dit, sê?") == []
    assert ucs2_forcing_chars("plain text") == []
