"""Calls per second of each answer reader over realistic answers, on one core.

Run: .venv/bin/python bench/understanding.py [--seconds 0.5]
Each reader should stay well under 50 microseconds a call so the engine can do 20,000 steps/s.
Choice matching and phone numbers are shown twice: as the engine sees it (answers already seen are remembered) and "cold", with that memory cleared before every call.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from datetime import date

from forms_runtime.understanding import (
    ChoiceOption,
    clean_text,
    compile_options,
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
from forms_runtime.understanding.contact import _phone

TODAY = date(2026, 3, 4)
OPTIONS = (
    ChoiceOption("pothole", ("Pothole", "Slaggat", "Umgodi", "Umngxuma", "hole in the road")),
    ChoiceOption(
        "leak",
        (
            "Water leak or burst pipe",
            "Waterlek of gebarste pyp",
            "Ukuvuza kwamanzi",
            "Amanzi avuzayo",
        ),
    ),
    ChoiceOption(
        "no_water", ("No water supply", "Geen water nie", "Awekho amanzi", "Akukho manzi")
    ),
    ChoiceOption(
        "streetlight",
        (
            "Streetlight not working",
            "Straatlig werk nie",
            "Isibani somgwaqo asisebenzi",
            "Isibane sesitrato asisebenzi",
        ),
    ),
    ChoiceOption(
        "dumping",
        (
            "Illegal dumping",
            "Onwettige storting",
            "Ukulahlwa kukadoti ngokungemthetho",
            "Ukulahlwa kwenkunkuma ngokungekho mthethweni",
        ),
    ),
    ChoiceOption("other", ("Something else", "Iets anders", "Okunye", "Enye into")),
)
CHOICE_ANSWERS = [
    "2",
    "potole",
    "Slaggat",
    "burst pipe",
    "no water",
    "streetlite",
    "dumping",
    "iets anders",
    "(3)",
    "banana",
]
ANSWERS: dict[str, list[str]] = {
    "clean_text": [
        "I think it is about a car tyre",
        "  Hi\u202e there\u200b ",
        "Ngiyabonga kakhulu, umgodi mkhulu",
        "Naby die skool in Ntlangano Straat",
    ],
    "fold": ["Smaller than a plate", "Désember", "Slaggat, ASSEBLIEF!", "uMsombuluko"],
    "yes_no": ["yes", "Yebo", "nee dankie", "ewe", "👍", "yes please", "maybe", "hhayi"],
    "date": [
        "today",
        "gister",
        "3 Dec",
        "03/12/2026",
        "last monday",
        "uMsombuluko",
        "3 Decmber",
        "2026-12-03",
    ],
    "number": ["5", "about 5,5", "1 000", "vyf", "twenty five", "none"],
    "phone": ["083 123 4567", "+27 83 123 4567", "27831234567", "12345"],
    "email": ["thandi@example.co.za", "Sipho@Gmail.com", "not an email"],
    "name": ["Nomsa van der Merwe", "Zoë O’Neill-Mthembu", "R2D2"],
    "navigation": [
        "back",
        "terug",
        "change 2",
        "qala kabusha",
        "at the back of the house",
        "isiXhosa",
        "potole",
    ],
    "multi_choice": ["1, 3", "potole and lights", "13", "slaggat en straatlig"],
}


def _cold_match(text: str) -> object:
    compile_options(OPTIONS).memo.clear()
    return match_choice(text, OPTIONS)


def _cold_phone(text: str) -> object:
    _phone.cache_clear()
    return normalise_phone(text)


READERS: dict[str, tuple[Callable[[str], object], list[str]]] = {
    "clean_text": (clean_text, ANSWERS["clean_text"]),
    "fold": (fold, ANSWERS["fold"]),
    "match_choice": (lambda t: match_choice(t, OPTIONS), CHOICE_ANSWERS),
    "match_choice (cold)": (_cold_match, CHOICE_ANSWERS),
    "match_choices": (lambda t: match_choices(t, OPTIONS), ANSWERS["multi_choice"]),
    "parse_yes_no": (parse_yes_no, ANSWERS["yes_no"]),
    "parse_date": (lambda t: parse_date(t, TODAY), ANSWERS["date"]),
    "parse_number": (lambda t: parse_number(t, "af"), ANSWERS["number"]),
    "normalise_phone": (normalise_phone, ANSWERS["phone"]),
    "normalise_phone (cold)": (_cold_phone, ANSWERS["phone"]),
    "parse_email": (parse_email, ANSWERS["email"]),
    "parse_name": (parse_name, ANSWERS["name"]),
    "parse_navigation": (parse_navigation, ANSWERS["navigation"]),
}


def measure(reader: Callable[[str], object], answers: list[str], seconds: float) -> float:
    """Calls per second, cycling through ``answers`` in batches so the clock is read rarely."""
    for answer in answers:
        reader(answer)  # warm caches that a running server would already have warm
    calls = 0
    cycle = itertools.cycle(answers)
    began = time.perf_counter()
    deadline = began + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            reader(next(cycle))
        calls += 200
    return calls / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per reader")
    args = parser.parse_args()
    print(f"{'reader':<24}{'calls/s':>12}{'us/call':>10}")
    for name, (reader, answers) in READERS.items():
        rate = measure(reader, answers, args.seconds)
        print(f"{name:<24}{rate:>12,.0f}{1e6 / rate:>10.1f}")


if __name__ == "__main__":
    main()
