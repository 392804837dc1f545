"""Realistic answers to any question, for benchmarks, load tests and end-to-end smoke tests.

A simulated resident answers each ``Ask`` the way people do: numbers or labels with typos,
place names, GPS pins, "yesterday". It only uses public effect types, so every channel's tests
and benchmarks can drive any form without knowing its steps.

Example::

    rng = random.Random(1)
    inbound = sample_answer(ask, rng)          # Inbound(text="Site C Khayelitsha")
"""

from __future__ import annotations

import random

from forms_runtime.effects import Ask, GeoPoint, Inbound, InputKind, MediaRef, Review

__all__ = ["PINS", "PLACES", "sample_answer", "typo"]

# Place names as residents type them (with the odd misspelling) and pins inside Cape Town.
PLACES = (
    "Site C Khayelitsha",
    "mitchells plain",
    "Gugulethu",
    "Philippi",
    "khayelitsa",
    "Dunoon",
    "Imizamo Yethu",
    "Delft",
)
PINS = (
    GeoPoint(-34.0363, 18.6776),
    GeoPoint(-33.9249, 18.4241),
    GeoPoint(-33.98, 18.57),
    GeoPoint(-34.05, 18.62),
)
_TEXTS = {
    InputKind.TEXT: (
        "Water is running down the street",
        "Next to the school gate",
        "Since this morning",
    ),
    InputKind.NUMBER: ("2", "3", "1"),
    InputKind.DATE: ("yesterday", "today", "3 Dec", "gister", "izolo"),
    InputKind.PHONE: ("083 123 4567", "+27 82 555 0101", "0721234567"),
    InputKind.EMAIL: ("thandi@example.org", "Pieter.Smit@Example.co.za"),
    InputKind.NAME: ("Thandi Mokoena", "Pieter van der Merwe", "Lwazi"),
}


def typo(word: str, rng: random.Random) -> str:
    """Drop one inner letter, as thumbs on a phone do."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1 :]


def sample_answer(
    effect: Ask | Review, rng: random.Random, *, typos: bool = True, rejected: bool = False
) -> Inbound:
    """An answer to ``effect``; ``rejected`` says the last answer to it was not accepted."""
    if isinstance(effect, Review):
        return Inbound(text="send")
    kind = effect.kind
    if kind in (InputKind.CHOICE, InputKind.MULTI_CHOICE) and effect.options:
        index = rng.randrange(len(effect.options))
        if effect.options[index].id.startswith("pick:"):
            return Inbound(text="1")
        roll = rng.random()
        if roll < 0.4:
            return Inbound(text=str(index + 1))
        if roll < 0.7 or not typos:
            return Inbound(option_id=effect.options[index].id)
        return Inbound(text=typo(effect.options[index].label.lower(), rng))
    if kind is InputKind.YES_NO:
        return Inbound(
            text=rng.choice(("yes", "no", "ja", "yebo", "ewe", "nee", "hayi", "yes please"))
        )
    if kind is InputKind.LOCATION:
        if rng.random() < 0.5:
            return Inbound(location=rng.choice(PINS))
        return Inbound(text=rng.choice(PLACES))
    if kind is InputKind.PHOTO:
        return Inbound(media=MediaRef("https://media.example/p.jpg", "image/jpeg", 120_000))
    if rejected and kind is InputKind.TEXT:
        # A text in a set format (a meter number): a resident tries digits, or skips.
        return Inbound(text="skip" if effect.optional else "12345678")
    texts = _TEXTS.get(kind, _TEXTS[InputKind.TEXT])
    return Inbound(text=rng.choice(texts))
