"""Every ward a place reaches into (issue 10, defect 4): settlements from their polygons, suburbs
and towns from the settlements recorded in them; what the data cannot place is counted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from forms_runtime.gazetteer import Gazetteer, Place


def _settlements_in(gazetteer: Gazetteer, town: str) -> list[Place]:
    return [p for p in gazetteer.places if p.kind == "informal_settlement" and p.town == town]


def test_a_town_lists_every_ward_its_settlements_reach(gazetteer: Gazetteer):
    # "SUBSCRIBE Khayelitsha" had no ward to subscribe to: the town had no point and no ward.
    for name in ("Khayelitsha", "Mitchells Plain", "Guguletu", "Langa"):
        town = gazetteer.get(name)
        assert town is not None and town.lat is not None and town.lon is not None
        reached = {w for p in _settlements_in(gazetteer, name) for w in p.wards}
        assert set(town.wards) == reached | {town.ward}, name
        assert town.ward == gazetteer.locate(town.lat, town.lon).ward
        assert len(town.wards) == len(set(town.wards)) > 1
    assert len(gazetteer.get("Khayelitsha").wards) == 10  # type: ignore[union-attr]


def test_a_scattered_town_is_pinned_on_one_of_its_settlements(gazetteer: Gazetteer):
    # Khayelitsha's 52 settlements lie up to 6 km apart: their mean would be nowhere named.
    town = gazetteer.get("Khayelitsha")
    assert town is not None and town.approximate
    points = {(p.lat, p.lon) for p in _settlements_in(gazetteer, "Khayelitsha")}
    assert (town.lat, town.lon) in points


def test_a_settlement_over_two_wards_lists_both(gazetteer: Gazetteer, data_dir: Path):
    place = gazetteer.get("BM Section")
    assert place is not None and place.wards == ("93", "89")
    # Independently of the build's sampling: the polygon's own corners lie in both wards.
    features = json.loads((data_dir / "cct_informal_settlements.geojson").read_text("utf-8"))
    [feature] = [f for f in features["features"] if f["properties"]["InformalSe"] == "BM Section"]
    rings = feature["geometry"]["coordinates"]
    if feature["geometry"]["type"] == "MultiPolygon":
        rings = [ring for polygon in rings for ring in polygon]
    corners = Counter(gazetteer.locate(lat, lon).ward for ring in rings for lon, lat in ring)
    assert {"93", "89"} <= set(corners)


def test_wards_start_with_the_main_ward_and_the_rest_are_in_number_order(gazetteer: Gazetteer):
    for place in gazetteer.places:
        if not place.wards:
            assert place.ward is None
            continue
        assert place.ward == place.wards[0]
        assert place.lat is not None and place.lon is not None
        assert place.ward == gazetteer.locate(place.lat, place.lon).ward, place.name
        rest = [int(w) for w in place.wards[1:]]
        assert rest == sorted(rest) and len(set(place.wards)) == len(place.wards), place.name


def test_precision_and_area_type_of_every_place(gazetteer: Gazetteer):
    for place in gazetteer.places:
        if place.kind == "informal_settlement":
            assert (place.precision, place.area_type) == ("settlement", "informal_settlement")
        else:
            assert place.precision == "suburb"
            assert place.area_type in ("mixed", "formal", "unknown")
            # "mixed" exactly where settlements place it (the city's own name aside).
            assert (place.area_type == "mixed") == (bool(place.wards) or place.name == "Cape Town")


def test_what_the_data_cannot_place_is_counted(gazetteer: Gazetteer):
    """The sources give suburbs and towns no geometry (docs/gazetteer.md, "Wards"): a suburb or
    town is placed only by the settlements recorded in it. These counts change only with the
    data; a suburb-polygon layer would place the rest."""
    placed = [p for p in gazetteer.places if p.wards]
    why: Counter[str] = Counter()
    for place in gazetteer.places:
        if place.wards:
            continue
        if place.name == gazetteer.city:
            why["names the whole city"] += 1
        elif place.area_type == "formal":
            why["no settlement recorded in its town"] += 1
        elif place.town is None:
            why["no single town"] += 1
        else:
            why["its town's settlements are not recorded in it"] += 1
    assert len(gazetteer.places) == 1529
    assert len(placed) == 373  # was 365, with one ward each
    assert Counter(p.kind for p in placed) == {"informal_settlement": 324, "suburb": 40, "town": 9}
    assert why == {
        "its town's settlements are not recorded in it": 544,
        "no settlement recorded in its town": 416,
        "no single town": 195,
        "names the whole city": 1,
    }
