"""Gazetteer.match_place and Gazetteer.get over the packaged Cape Town gazetteer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forms_runtime.gazetteer import Gazetteer, default_gazetteer, matching
from forms_runtime.gazetteer.build import PACKAGED_OUTLINES
from forms_runtime.gazetteer.folding import compact, fold


def best_name(gazetteer: Gazetteer, text: str) -> str | None:
    match = gazetteer.match_place(text)
    return match.best.name if match.best else None


@pytest.mark.parametrize(
    "text",
    ["mitchells plain", "Mitchell's Plain", "MITCHELLS-PLAIN", "mitchels plain", "M/Plain"],
)
def test_spellings_of_mitchells_plain(gazetteer: Gazetteer, text):
    match = gazetteer.match_place(text)
    assert match.best is not None
    assert match.best.name == "Mitchells Plain"
    assert match.candidates == ()


def test_a_spelling_variant_from_the_synonyms_file(gazetteer: Gazetteer):
    assert best_name(gazetteer, "mithchells plain") == "Mitchells Plain"  # "MITHCHELLS PLAIN"
    assert best_name(gazetteer, "kaapstad") == "Cape Town"  # "KAAPSTAD, CAPE-TOWN"
    assert best_name(gazetteer, "elsies rivier") == "Elsies River"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("khayelitsa", "Khayelitsha"),
        ("Durbanvile", "Durbanville"),
        ("Gugulethu", "Guguletu"),
        ("bonteheuwl", "Bonteheuwel"),
        ("Phillipi", "Philippi"),
        ("Du Noon", "Dunoon"),
    ],
)
def test_typos_and_spellings(gazetteer: Gazetteer, text, name):
    assert best_name(gazetteer, text) == name


def test_town_words_pick_the_settlement_in_that_town(gazetteer: Gazetteer):
    # "Green Point" is a suburb by the Waterfront and an informal settlement in Khayelitsha.
    plain = gazetteer.match_place("Green Point")
    assert plain.best is None
    assert {p.kind for p in plain.candidates} == {"suburb", "informal_settlement"}

    in_khayelitsha = gazetteer.match_place("Green Point Khayelitsha").best
    assert in_khayelitsha is not None
    assert in_khayelitsha.kind == "informal_settlement"
    assert in_khayelitsha.town == "Khayelitsha"
    assert in_khayelitsha.ward == "93"

    in_town = gazetteer.match_place("Green Point, Cape Town").best
    assert in_town is not None and in_town.kind == "suburb" and in_town.town == "Cape Town"


def test_site_c_khayelitsha_finds_khayelitsha(gazetteer: Gazetteer):
    # Site C is not among the City's recorded informal settlements; the town words still
    # place the text, and the engine keeps the full text as the address.
    match = gazetteer.match_place("Site C Khayelitsha")
    assert match.best is not None
    assert match.best.name == "Khayelitsha"
    assert match.best.kind == "town"


def test_a_settlement_with_its_town(gazetteer: Gazetteer):
    place = gazetteer.match_place("Phola Park Philippi").best
    assert place is not None
    assert place.kind == "informal_settlement"
    assert place.area_type == "informal_settlement"
    assert place.lat is not None and place.ward is not None


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("corner of NY1 street and NY 108 road, Gugulethu", "Guguletu"),
        ("12 Main Road, Sea Point", "Sea Point"),
        ("I live in Langa near the station", "Langa"),
        ("next to the school in Tafelsig", "Tafelsig"),
        ("Lentegeur Mitchells Plain", "Lentegeur"),
    ],
)
def test_a_place_inside_a_longer_text(gazetteer: Gazetteer, text, name):
    assert best_name(gazetteer, text) == name


@pytest.mark.parametrize(
    "text",
    [
        "the road",
        "road",
        "park",
        "near the shop",
        "",
        "   ",
        "!!!",
        "hello",
        "there is a big pothole outside number 5 on the main road by the shops",
        "x" * 10_000,
        "'; DROP TABLE places; --",
        "<b>bold</b>",
        "🚧🚧",
    ],
)
def test_vague_or_unknown_text_matches_nothing(gazetteer: Gazetteer, text):
    match = gazetteer.match_place(text)
    assert match.best is None
    assert match.candidates == ()


@pytest.mark.parametrize(
    ("text", "shared"),
    [("Joe Slovo", "joe slovo"), ("Gwayi Road", "gwayi road"), ("Browns Farm", "browns farm")],
)
def test_similar_names_give_candidates(gazetteer: Gazetteer, text, shared):
    match = gazetteer.match_place(text)
    assert match.best is None
    assert 2 <= len(match.candidates) <= 3
    assert all(fold(p.name).startswith(shared) for p in match.candidates)
    assert len(gazetteer.match_place(text, limit=2).candidates) == 2


def test_one_name_shared_by_a_suburb_and_a_settlement_gives_candidates(gazetteer: Gazetteer):
    match = gazetteer.match_place("Enkanini")
    names = [p.name for p in match.candidates]
    assert match.best is None
    assert "Enkanini" in names and "Enkanini informal settlement" in names


def test_a_whole_name_beats_a_part_of_a_combined_name(gazetteer: Gazetteer):
    # "Zwelitsha" is a settlement, and a part of "Zwelitsha / Enkanini".
    assert best_name(gazetteer, "Zwelitsha") == "Zwelitsha"


def test_get_finds_every_candidate_by_its_display_name(gazetteer: Gazetteer):
    for text in ("Joe Slovo", "Enkanini", "Avondale", "Green Point"):
        for place in gazetteer.match_place(text).candidates:
            assert gazetteer.get(place.name) == place
    assert gazetteer.get("Mitchells Plain") == gazetteer.match_place("mitchells plain").best
    assert gazetteer.get("Nowhere Special") is None


def test_display_names_are_unique(gazetteer: Gazetteer):
    names = [p.name for p in gazetteer.places]
    assert len(names) == len(set(names)) > 1000


def test_towns_with_a_derived_point_are_marked_approximate(gazetteer: Gazetteer):
    # A town has no outline of its own: its point comes from the settlements recorded in it.
    khayelitsha = gazetteer.get("Khayelitsha")
    assert khayelitsha is not None
    assert khayelitsha.kind == "town"
    assert khayelitsha.approximate
    assert khayelitsha.lat is not None and khayelitsha.lon is not None
    assert khayelitsha.ward == gazetteer.locate(khayelitsha.lat, khayelitsha.lon).ward
    assert khayelitsha.area_type == "mixed"  # 52 settlements lie in it; a resident may be in one
    assert khayelitsha.precision == "suburb"


def test_suburbs_placed_by_their_outline_are_not_approximate(gazetteer: Gazetteer):
    guguletu = gazetteer.get("Guguletu")
    assert guguletu is not None and guguletu.kind == "suburb"
    assert not guguletu.approximate  # the City's own point for the suburb
    assert (guguletu.lat, guguletu.lon) == (-33.9828, 18.5686)
    assert guguletu.ward == gazetteer.locate(guguletu.lat, guguletu.lon).ward == "39"
    assert guguletu.area_type == "mixed"  # 13 settlements lie in it; a resident may be in one
    assert guguletu.precision == "suburb"


def test_places_without_an_honest_point_have_none(gazetteer: Gazetteer):
    # Bongweni is in the suburb list (Khayelitsha) but not among the official suburbs' outlines.
    bongweni = gazetteer.get("Bongweni")
    assert bongweni is not None and bongweni.kind == "suburb"
    assert (bongweni.lat, bongweni.lon, bongweni.wards) == (None, None, ())
    assert bongweni.area_type == "unknown"  # Khayelitsha holds settlements; Bongweni may not
    assert not bongweni.approximate
    outlined = {compact(fold(s["name"])) for s in _outlines()}
    for place in gazetteer.places:
        if place.lat is None or place.lon is None:
            assert (place.lat, place.lon, place.ward, place.wards) == (None, None, None, ())
            assert place.area_type in ("formal", "unknown") or place.name == "Cape Town"
        elif place.kind != "informal_settlement":
            # Estimated from settlements, unless the suburb's own outline placed it.
            by_outline = place.kind == "suburb" and compact(fold(place.name)) in outlined
            assert place.approximate == (not by_outline), place.name
            assert place.ward == gazetteer.locate(place.lat, place.lon).ward


def _outlines() -> list[dict[str, Any]]:
    suburbs: list[dict[str, Any]] = json.loads(PACKAGED_OUTLINES.read_text("utf-8"))["suburbs"]
    return suburbs


def test_only_city_suburbs(gazetteer: Gazetteer):
    # Suburbs of other Western Cape towns in the suburb list are not the City's.
    for name in ("Knysna", "Hartenbos", "Franschhoek", "Oudtshoorn", "Outside"):
        assert gazetteer.get(name) is None, name
    # Namesake towns elsewhere: Witsand on the Breede, Strandfontein on the West Coast.
    for name in ("Breedezicht Estate", "Louis Rood"):
        assert gazetteer.get(name) is None, name
    strandfontein = gazetteer.get("Strandfontein")
    assert strandfontein is not None and strandfontein.town == "Mitchells Plain"
    assert gazetteer.city == "Cape Town"


# What match() relies on to skip a second fuzzy search of the whole text: a stricter cut-off
# finds a subset of what the looser one found (so nothing, when the looser found nothing).
_PLACE_WORDS = [fold(p.name) for p in default_gazetteer().places][::7]


@given(
    st.one_of(
        st.sampled_from(_PLACE_WORDS),
        st.builds(
            lambda name, at, n: name[:at] + name[at + n :],
            st.sampled_from(_PLACE_WORDS),
            st.integers(min_value=0, max_value=12),
            st.integers(min_value=0, max_value=2),
        ),
        st.text("abcdehiklmnopstuy ", min_size=3, max_size=14),
    )
)
def test_the_window_cut_off_finds_a_subset_of_the_whole_text_cut_off(query: str) -> None:
    index = default_gazetteer()._index
    strict = index._fuzzy(query, matching._WINDOW_CUTOFF)
    loose = index._fuzzy(query, matching._CUTOFF)
    assert matching._WINDOW_CUTOFF >= matching._CUTOFF
    assert strict.keys() <= loose.keys()
