from datetime import date

import pytest

from forms_runtime.understanding.dates import parse_date

# A Wednesday.
TODAY = date(2026, 3, 4)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # relative words
        ("today", date(2026, 3, 4)),
        ("Yesterday", date(2026, 3, 3)),
        ("ystrday", date(2026, 3, 3)),
        ("day before yesterday", date(2026, 3, 2)),
        ("this morning", date(2026, 3, 4)),
        ("last night", date(2026, 3, 3)),
        ("yesterday at 5pm", date(2026, 3, 3)),
        ("2 days ago", date(2026, 3, 2)),
        ("two days ago", date(2026, 3, 2)),
        ("a week ago", date(2026, 2, 25)),
        # weekdays: the most recent one, today included; "last" never means today
        ("monday", date(2026, 3, 2)),
        ("Last Monday", date(2026, 3, 2)),
        ("on tuesday", date(2026, 3, 3)),
        ("wednesday", date(2026, 3, 4)),
        ("last wednesday", date(2026, 2, 25)),
        ("sun", date(2026, 3, 1)),
        # day-first numbers, ISO, dotted
        ("03/12/2026", date(2026, 12, 3)),
        ("3/12/26", date(2026, 12, 3)),
        ("2026-12-03", date(2026, 12, 3)),
        ("3.12.2026", date(2026, 12, 3)),
        ("3-12-2026", date(2026, 12, 3)),
        ("3/12", date(2025, 12, 3)),  # no year: the most recent 3 December
        ("4/3", date(2026, 3, 4)),  # today itself
        ("5/3", date(2025, 3, 5)),  # tomorrow's date means last year
        # month names
        ("3 Dec", date(2025, 12, 3)),
        ("3 December", date(2025, 12, 3)),
        ("December 3", date(2025, 12, 3)),
        ("3 Dec 2026", date(2026, 12, 3)),
        ("the 3rd of December", date(2025, 12, 3)),
        ("Monday 3 December", date(2025, 12, 3)),
        ("1 March", date(2026, 3, 1)),
        ("29 Feb", date(2024, 2, 29)),  # leap day looks back to a leap year
        # typos in month names
        ("3 Decmber", date(2025, 12, 3)),
        ("Febuary 28", date(2026, 2, 28)),
    ],
)
def test_english(raw: str, expected: date) -> None:
    assert parse_date(raw, TODAY) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("vandag", date(2026, 3, 4)),
        ("Gister", date(2026, 3, 3)),
        ("gisteraand", date(2026, 3, 3)),
        ("eergister", date(2026, 3, 2)),
        ("vanoggend", date(2026, 3, 4)),
        ("Maandag", date(2026, 3, 2)),
        ("verlede Maandag", date(2026, 3, 2)),
        ("Vrydag", date(2026, 2, 27)),
        ("3 Desember", date(2025, 12, 3)),
        ("3 Desember 2025", date(2025, 12, 3)),
        ("1 Maart", date(2026, 3, 1)),
        ("twee dae gelede", date(2026, 3, 2)),
        ("3de Desember", date(2025, 12, 3)),
    ],
)
def test_afrikaans(raw: str, expected: date) -> None:
    assert parse_date(raw, TODAY) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("namuhla", date(2026, 3, 4)),
        ("izolo", date(2026, 3, 3)),
        ("kuthangi", date(2026, 3, 2)),
        ("uMsombuluko", date(2026, 3, 2)),
        ("ngoLwesibili", date(2026, 3, 3)),
        ("ngeSonto", date(2026, 3, 1)),
        ("uDisemba 3", date(2025, 12, 3)),
        ("3 kuZibandlela", date(2025, 12, 3)),
        ("mhla zi-3 kuDisemba", date(2025, 12, 3)),
    ],
)
def test_isizulu(raw: str, expected: date) -> None:
    assert parse_date(raw, TODAY) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("namhlanje", date(2026, 3, 4)),
        ("izolo", date(2026, 3, 3)),
        ("phezolo", date(2026, 3, 3)),
        ("ngoMvulo", date(2026, 3, 2)),
        ("ngeCawa", date(2026, 3, 1)),
        ("ngomhla we-3 kuDisemba", date(2025, 12, 3)),
        ("3 eyoMnga", date(2025, 12, 3)),
        ("3 uDisemba 2025", date(2025, 12, 3)),
        ("ngeCawe", date(2026, 3, 1)),
        ("1 eyeCanzibe 2025", date(2025, 5, 1)),
        ("12 uTshazimpuzi 2025", date(2025, 4, 12)),
        ("5 eyoKwindla", date(2025, 3, 5)),
    ],
)
def test_isixhosa(raw: str, expected: date) -> None:
    assert parse_date(raw, TODAY) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "", "   ", "banana", "3", "the 3rd", "31/02/2026", "31/02", "30 February", "13/13/2026",
        "0/1/2026", "1 Jan 1800", "32 December", "3 Dec 4 Dec", "monday tuesday", "last week",
        "some time ago", "2026", "12/2026", "3 days", "<script>alert(1)</script>",
        "'; DROP TABLE answers; --",
    ],
)  # fmt: skip
def test_nonsense_and_impossible_dates(raw: str) -> None:
    assert parse_date(raw, TODAY) is None


def test_a_date_without_year_in_early_january_looks_back_to_last_year() -> None:
    assert parse_date("31 Dec", date(2026, 1, 2)) == date(2025, 12, 31)
    assert parse_date("2 Jan", date(2026, 1, 2)) == date(2026, 1, 2)
