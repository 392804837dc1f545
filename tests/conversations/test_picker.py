"""The service picker: residents' own words -> the standard forms, in every locale."""

from __future__ import annotations

import pytest

from conversations.picker import MENU_OPTION, ServicePicker
from forms_runtime.loader import standard_forms

PICKER = ServicePicker(standard_forms())


@pytest.mark.parametrize(
    ("text", "form_id"),
    [
        ("there's water pouring out of the road", "water_leak"),
        ("potole", "pothole"),
        ("big hole in the road outside my house", "pothole"),
        ("krag is af", "power_outage"),
        ("awukho umbane", "power_outage"),
        ("akukho manzi", "no_water"),
        ("the bin was not collected", "refuse_missed"),
        ("someone dumped rubble on the corner", "illegal_dumping"),
    ],
)
def test_free_text_finds_the_right_form(text: str, form_id: str) -> None:
    matches = PICKER.match(text)
    assert matches and matches[0].form.id == form_id, [m.form.id for m in matches]


def test_a_clear_miss_offers_nothing() -> None:
    assert PICKER.match("qwerty uiop") == []
    assert PICKER.match("") == []


def test_yes_or_no_answers_a_single_offer() -> None:
    assert PICKER.choose("yes", None, ["pothole"]) == "pothole"
    assert PICKER.choose("yebo", None, ["pothole"]) == "pothole"
    assert PICKER.choose("nee", None, ["pothole"]) == MENU_OPTION
    # With several offers, "yes" says nothing about which one.
    assert PICKER.choose("yes", None, ["pothole", "water_leak"]) is None


def test_numbers_buttons_and_titles() -> None:
    offered = ["water_leak", "no_water"]
    assert PICKER.choose("2", None, offered) == "no_water"
    assert PICKER.choose("3", None, offered) == MENU_OPTION
    assert PICKER.choose("9", None, offered) is None
    assert PICKER.choose(None, "water_leak", offered) == "water_leak"
    assert PICKER.choose(None, "pothole", offered) is None
    assert PICKER.choose("no water supply", None, offered) == "no_water"


def test_the_menu_lists_every_service_in_the_residents_language() -> None:
    menu = PICKER.menu("af")
    assert [o.id for o in menu.options] == list(standard_forms())
    assert menu.prompt != PICKER.menu("en").prompt


def test_a_digit_int_cannot_read_is_no_choice() -> None:
    # "፩" (Ethiopic one) passes str.isdigit(), survives NFKD, and int() refuses it: the turn
    # failed with a 500. "²" folds to "2".
    offered = ["pothole", "no_water"]
    assert PICKER.choose("፩", None, offered) is None
    assert PICKER.choose("²", None, offered) == "no_water"
