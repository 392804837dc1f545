"""Gazetteer.locate: wards and informal settlements by point-in-polygon."""

from __future__ import annotations

import csv

import pytest

from forms_runtime.gazetteer import Gazetteer
from forms_runtime.gazetteer.folding import fold

# The recorded centroid of Koekoe lies about 55 m outside its own polygon in the source data;
# the gazetteer gives that settlement a point inside the polygon instead (docs/gazetteer.md).
CENTROIDS_OUTSIDE_OWN_POLYGON = {"EBEKOE001"}


def _rows(data_dir):
    with (data_dir / "cct_informal_settlements_wards.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_settlement_centroid_is_in_its_2021_ward(gazetteer: Gazetteer, data_dir):
    rows = _rows(data_dir)
    assert len(rows) == 326
    wrong = [
        (r["settlement_id"], gazetteer.locate(float(r["lat"]), float(r["lon"])).ward)
        for r in rows
        if gazetteer.locate(float(r["lat"]), float(r["lon"])).ward != r["ward_2021_pip"]
    ]
    assert wrong == []


def test_every_settlement_centroid_is_in_its_own_settlement(gazetteer: Gazetteer, data_dir):
    outside = set()
    for r in _rows(data_dir):
        info = gazetteer.locate(float(r["lat"]), float(r["lon"]))
        if info.settlement is None or not fold(info.settlement).startswith(
            fold(r["settlement_name"])
        ):
            outside.add(r["settlement_id"])
        else:
            assert info.area_type == "informal_settlement"
            assert info.in_city
    assert outside == CENTROIDS_OUTSIDE_OWN_POLYGON


def test_every_settlement_place_point_is_in_itself_and_its_ward(gazetteer: Gazetteer, data_dir):
    ward_by_name = {fold(r["settlement_name"]): r["ward_2021_pip"] for r in _rows(data_dir)}
    settlements = [p for p in gazetteer.places if p.kind == "informal_settlement"]
    assert len(settlements) >= 320  # two names recur in one town and are one place each
    for place in settlements:
        assert place.lat is not None and place.lon is not None
        assert not place.approximate
        assert place.area_type == "informal_settlement"
        info = gazetteer.locate(place.lat, place.lon)
        assert info.settlement == place.name
        assert info.ward == place.ward
        bare = fold(place.name.removesuffix(" informal settlement"))
        assert place.ward == ward_by_name[bare], place.name


def test_the_fixture_point_is_in_a_ward(gazetteer: Gazetteer):
    # The location in /work/shared/fixtures (Telegram and WhatsApp location messages).
    info = gazetteer.locate(-34.0363, 18.6776)
    assert info.in_city
    assert info.ward == "94"
    assert info.area_type == "formal"
    assert info.settlement is None


@pytest.mark.parametrize(
    ("lat", "lon", "where"),
    [
        (-34.2, 18.2, "the Atlantic, west of the peninsula"),
        (-34.15, 18.7, "False Bay"),
        (-33.9346, 18.8602, "Stellenbosch"),
        (51.5, -0.12, "London"),
        (0.0, 0.0, "null island"),
    ],
)
def test_points_outside_the_city(gazetteer: Gazetteer, lat, lon, where):
    info = gazetteer.locate(lat, lon)
    assert not info.in_city, where
    assert info.ward is None
    assert info.settlement is None


def test_a_formal_suburb_point(gazetteer: Gazetteer):
    info = gazetteer.locate(-33.9249, 18.4241)  # central Cape Town
    assert info.in_city
    assert info.area_type == "formal"
    assert info.ward is not None


def test_every_ward_is_present(gazetteer: Gazetteer, data_dir):
    wards = {r["ward_2021_pip"] for r in _rows(data_dir)}
    found = {gazetteer.locate(float(r["lat"]), float(r["lon"])).ward for r in _rows(data_dir)}
    assert wards == found
