"""Every ward a place reaches into (issue 10, defect 4): settlements and official suburbs from
their polygons, towns and other suburbs from the settlements recorded in them; what the data cannot
place is counted."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

from forms_runtime.gazetteer import Gazetteer, Place
from forms_runtime.gazetteer.build import PACKAGED_OUTLINES
from forms_runtime.gazetteer.folding import compact, fold
from forms_runtime.gazetteer.geometry import Area, AreaIndex, rings_of


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
    # Two outlines that fold to one name ("Goede Hoop", "Goedehoop") place neither.
    names = Counter(compact(fold(o["name"])) for o in _outlines())
    outlined = {name for name, n in names.items() if n == 1}
    for place in gazetteer.places:
        if place.kind == "informal_settlement":
            assert (place.precision, place.area_type) == ("settlement", "informal_settlement")
            continue
        assert place.precision == "suburb"
        if place.kind == "suburb" and compact(fold(place.name)) in outlined:
            # Its outline says what it holds: nearly all settlement (Enkanini), some, or none.
            assert place.wards, place.name
            assert place.area_type in ("informal_settlement", "mixed", "formal"), place.name
        else:
            assert place.area_type in ("mixed", "formal", "unknown")
            # "mixed" exactly where settlements place it (the city's own name aside).
            assert (place.area_type == "mixed") == (bool(place.wards) or place.name == "Cape Town")


def test_a_formerly_unplaced_official_suburb_has_its_ward(gazetteer: Gazetteer):
    # No settlement is recorded in Sea Point: before the suburb outlines it had no ward at all.
    sea_point = gazetteer.get("Sea Point")
    assert sea_point is not None and sea_point.lat is not None and sea_point.lon is not None
    assert sea_point.wards == ("54",)
    assert gazetteer.locate(sea_point.lat, sea_point.lon).ward == "54"
    assert sea_point.area_type == "formal"  # no settlement polygon reaches into it
    assert not sea_point.approximate


def test_a_suburb_over_several_wards_lists_all_of_them(gazetteer: Gazetteer):
    for name, wards in (
        ("Constantia", ("62", "71", "73")),
        ("Durbanville", ("112", "105")),
        ("Claremont", ("58", "59")),
        ("Langa", ("51", "52")),
    ):
        place = gazetteer.get(name)
        assert place is not None and place.wards == wards, name


def test_settlements_lie_in_the_suburb_their_records_name(data_dir: Path):
    """The outlines are reconstructed from a normalised drawing (docs/gazetteer.md, "Suburb
    outlines"); the settlement polygons, from another source, check where they landed. Where a
    settlement's recorded town is itself an official suburb (not a wider town: Khayelitsha's
    settlements lie outside the 1 km2 suburb named Khayelitsha), the settlement lies in it."""
    outlines = {compact(fold(o["name"])): _area(o) for o in _outlines()}
    features = json.loads((data_dir / "cct_informal_settlements.geojson").read_text("utf-8"))
    shares: dict[str, list[float]] = {}
    for feature in features["features"]:
        town = compact(fold(feature["properties"]["Town_Geo"] or ""))
        if town in ("crossroads", "nyanga", "guguletu", "langa", "dunoon", "houtbay"):
            settlement = Area("s", rings_of(feature["geometry"]))
            points = list(_grid(settlement, 12))
            inside = sum(outlines[town].contains(x, y) for x, y in points)
            shares.setdefault(town, []).append(inside / len(points))
    assert len(shares) == 6 and sum(map(len, shares.values())) == 76
    for town, found in shares.items():
        assert sum(found) / len(found) > 0.9, town


def test_the_outlines_tile_the_city_with_little_overlap(gazetteer: Gazetteer):
    index = AreaIndex([_area(o) for o in _outlines()])
    wards = gazetteer.ward_outlines
    city = AreaIndex([Area(ward, rings) for ward, rings in wards.items()])
    covered = in_city = overlapping = 0
    steps = 200
    for i, j in itertools.product(range(steps), repeat=2):
        lon = city.min_x + (i + 0.5) * (city.max_x - city.min_x) / steps
        lat = city.min_y + (j + 0.5) * (city.max_y - city.min_y) / steps
        if city.first_containing(lon, lat) is None:
            continue
        holding = index.all_containing(lon, lat)
        in_city += 1
        covered += bool(holding)
        overlapping += len(holding) > 1
    # Measured: 99.2% covered, 2.5% of it in two outlines (each drawn apart by ~40 m).
    assert covered > 0.98 * in_city
    assert overlapping < 0.04 * covered


def _outlines() -> list[dict[str, Any]]:
    suburbs: list[dict[str, Any]] = json.loads(PACKAGED_OUTLINES.read_text("utf-8"))["suburbs"]
    return suburbs


def _area(outline: dict[str, Any]) -> Area:
    rings = [list(zip(ring[::2], ring[1::2], strict=True)) for ring in outline["rings"]]
    return Area(outline["name"], rings)


def _grid(area: Area, steps: int) -> list[tuple[float, float]]:
    points = []
    for i, j in itertools.product(range(steps), repeat=2):
        x = area.min_x + (i + 0.5) * (area.max_x - area.min_x) / steps
        y = area.min_y + (j + 0.5) * (area.max_y - area.min_y) / steps
        if area.contains(x, y):
            points.append((x, y))
    return points


def test_what_the_data_cannot_place_is_counted(gazetteer: Gazetteer):
    """Settlements and official suburbs are placed by their polygons, towns and the other
    suburbs of the suburb list only by the settlements recorded in them (docs/gazetteer.md,
    "Wards"). These counts change only with the data."""
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
    assert len(placed) == 1077  # was 373 before the suburb outlines, 365 with one ward each
    assert Counter(p.kind for p in placed) == {"informal_settlement": 324, "suburb": 744, "town": 9}
    assert sum(len(p.wards) > 1 for p in placed) == 192
    assert why == {
        "its town's settlements are not recorded in it": 224,
        "no settlement recorded in its town": 224,
        "no single town": 3,
        "names the whole city": 1,
    }
