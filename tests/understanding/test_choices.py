import pytest

from forms_runtime.understanding.choices import (
    ChoiceMatch,
    ChoiceOption,
    compile_options,
    match_choice,
    match_choices,
)

PROBLEMS = (
    ChoiceOption("pothole", ("Pothole", "Slaggat", "Umgodi", "Umngxuma")),
    ChoiceOption("leak", ("Water leak or burst pipe", "Waterlek of gebarste pyp", "Ukuvuza kwamanzi")),
    ChoiceOption("no_water", ("No water supply", "Geen water nie", "Awekho amanzi", "Akukho manzi")),
    ChoiceOption("streetlight", ("Streetlight not working", "Straatlig werk nie", "Isibani somgwaqo", "Isibane sesitrato")),
)  # fmt: skip
SIZES = (
    ChoiceOption("small", ("Smaller than a plate", "Kleiner as 'n bord")),
    ChoiceOption("medium", ("About a car tyre", "Omtrent 'n motorband")),
    ChoiceOption("large", ("Bigger than a car tyre", "Groter as 'n motorband", "huge", "massive")),
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # numbers
        ("1", "pothole"), ("2", "leak"), ("2.", "leak"), ("(2)", "leak"), ("#4", "streetlight"),
        ("option 2", "leak"), ("opsie 3", "no_water"), ("no. 3", "no_water"), ("two", "leak"),
        ("vier", "streetlight"), ("second", "leak"),
        # exact labels in any locale, any case
        ("Pothole", "pothole"), ("SLAGGAT", "pothole"), ("umgodi", "pothole"),
        ("geen water nie", "no_water"), ("akukho manzi", "no_water"), ("straatlig werk nie", "streetlight"),
        # typos
        ("potole", "pothole"), ("pothol", "pothole"), ("slagat", "pothole"), ("streetlite", "streetlight"),
        ("umgod", "pothole"),
        # a word of a label, a word inside a label word, a plural
        ("burst pipe", "leak"), ("leak", "leak"), ("hole", "pothole"), ("lights", "streetlight"),
        ("no water", "no_water"), ("isibani", "streetlight"), ("the pothole", "pothole"),
        ("a big pothole near the school", "pothole"),
    ],
)  # fmt: skip
def test_match_choice_picks(raw: str, expected: str) -> None:
    assert match_choice(raw, PROBLEMS) == ChoiceMatch(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("small", "small"), ("smaler", "small"), ("plate", "small"), ("kleiner", "small"),
        ("big", "large"), ("huge", "large"), ("masive", "large"), ("groter", "large"),
        ("biger then a car tyre", "large"), ("about a car tire", "medium"), ("bord", "small"),
    ],
)  # fmt: skip
def test_match_choice_sizes(raw: str, expected: str) -> None:
    assert match_choice(raw, SIZES) == ChoiceMatch(expected)


def test_two_close_options_are_ambiguous() -> None:
    assert match_choice("water", PROBLEMS) == ChoiceMatch(None, ("leak", "no_water"))
    found = match_choice("car tyre", SIZES)
    assert found.option_id is None
    assert set(found.candidates) == {"medium", "large"}
    assert match_choice("motorband", SIZES).candidates != ()


@pytest.mark.parametrize(
    "raw", ["", "   ", "5", "0", "option 9", "banana", "xyz", "qwertyuiop", "👍", "?", "a", "the"]
)
def test_nothing_close_is_no_match(raw: str) -> None:
    assert match_choice(raw, PROBLEMS) == ChoiceMatch(None)


def test_two_options_with_the_same_label_are_ambiguous() -> None:
    options = (ChoiceOption("a", ("Other",)), ChoiceOption("b", ("Other",)))
    assert match_choice("other", options) == ChoiceMatch(None, ("a", "b"))


def test_options_may_be_a_list_and_an_empty_list_matches_nothing() -> None:
    assert match_choice("potole", list(PROBLEMS)) == ChoiceMatch("pothole")
    assert match_choice("1", []) == ChoiceMatch(None)
    assert match_choices("1, 2", []) == ((), ("1", "2"))


def test_compiled_options_are_cached_by_identity_and_value() -> None:
    assert compile_options(PROBLEMS) is compile_options(PROBLEMS)
    assert compile_options(tuple(PROBLEMS)) is compile_options(PROBLEMS)
    assert compile_options(list(PROBLEMS)) is compile_options(PROBLEMS)


def test_repeated_answers_give_the_same_result() -> None:
    first = match_choice("streetlite", PROBLEMS)
    assert match_choice("streetlite", PROBLEMS) == first == ChoiceMatch("streetlight")


@pytest.mark.parametrize(
    ("raw", "ids", "unknown"),
    [
        ("1, 3", ("pothole", "no_water"), ()),
        ("1,3", ("pothole", "no_water"), ()),
        ("3 and 1", ("pothole", "no_water"), ()),
        ("1 en 3", ("pothole", "no_water"), ()),
        ("1 futhi 4", ("pothole", "streetlight"), ()),
        ("2 kwaye 4", ("leak", "streetlight"), ()),
        ("1 3", ("pothole", "no_water"), ()),
        ("13", ("pothole", "no_water"), ()),  # fewer than 10 options: one digit each
        ("1; 1; 1", ("pothole",), ()),
        ("potole, lights", ("pothole", "streetlight"), ()),
        ("slaggat en straatlig", ("pothole", "streetlight"), ()),
        ("pothole streetlight", ("pothole", "streetlight"), ()),
        ("2", ("leak",), ()),
        ("1 and banana", ("pothole",), ("banana",)),
        ("15", (), ("15",)),
        ("9", (), ("9",)),
        ("water", (), ("water",)),
        ("", (), ()),
    ],
)
def test_match_choices(raw: str, ids: tuple[str, ...], unknown: tuple[str, ...]) -> None:
    assert match_choices(raw, PROBLEMS) == (ids, unknown)


def test_match_choices_with_ten_or_more_options_reads_whole_numbers() -> None:
    options = tuple(ChoiceOption(f"o{i}", (f"Thing {i}",)) for i in range(1, 13))
    assert match_choices("12, 3", options) == (("o3", "o12"), ())
    assert match_choices("13", options) == ((), ("13",))
    assert match_choices("1 12", options) == (("o1", "o12"), ())


def test_a_label_containing_and_is_one_option() -> None:
    options = (
        ChoiceOption("rubble", ("Sand and rubble",)),
        ChoiceOption("tyres", ("Tyres",)),
    )
    assert match_choices("Sand and rubble", options) == (("rubble",), ())
    assert match_choices("sand and rubble, tyres", options) == (("rubble", "tyres"), ())
