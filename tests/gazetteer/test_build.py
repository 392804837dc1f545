"""build_gazetteer, write_gazetteer, load_gazetteer and the CITYBOT_GAZETTEER override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.commands.gazetteer_build import packaged_path
from forms_runtime.gazetteer import (
    ENV_VAR,
    GazetteerError,
    build_gazetteer,
    default_gazetteer,
    load_gazetteer,
    write_gazetteer,
)


def test_the_build_command_reproduces_the_packaged_file(data_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "cape_town.json.gz"
    assert main(["gazetteer", "build", "--data", str(data_dir), "--out", str(out)]) == 0
    assert out.read_bytes() == packaged_path().read_bytes(), (
        "the packaged gazetteer is stale: run `citybot gazetteer build --data ../shared/data`"
    )
    printed = capsys.readouterr().out
    assert "116 wards" in printed
    # The coverage summary.
    assert "wards: 1077 of 1529 places (192 over several wards), 452 not placed by the data" in (
        printed
    )
    assert "area types: 849 formal, 329 informal_settlement, 124 mixed, 227 unknown" in printed


def test_the_build_command_names_a_missing_folder(tmp_path: Path, capsys):
    code = main(["gazetteer", "build", "--data", str(tmp_path / "nope"), "--out", "x.json.gz"])
    assert code == 2
    assert "no data folder" in capsys.readouterr().err


def test_the_build_command_names_a_missing_file(tmp_path: Path, capsys):
    code = main(["gazetteer", "build", "--data", str(tmp_path), "--out", str(tmp_path / "g.gz")])
    assert code == 2
    assert "cct_wards_2021.geojson" in capsys.readouterr().err


def test_build_and_write_are_deterministic(data_dir: Path, tmp_path: Path):
    first, second = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    write_gazetteer(build_gazetteer(data_dir), first)
    write_gazetteer(build_gazetteer(data_dir), second)
    assert first.read_bytes() == second.read_bytes()


def test_the_packaged_file_is_small_and_states_its_sources():
    assert packaged_path().stat().st_size < 1_000_000
    gazetteer = load_gazetteer(packaged_path())
    files = {source["file"] for source in gazetteer.sources}
    assert "cct_wards_2021.geojson" in files
    assert all(source["licence"] for source in gazetteer.sources)


def test_a_file_that_is_not_a_gazetteer_is_refused(tmp_path: Path):
    junk = tmp_path / "junk.json.gz"
    junk.write_bytes(b"\x1f\x8bnot gzip at all")
    with pytest.raises(GazetteerError, match="not a readable gazetteer"):
        load_gazetteer(junk)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(GazetteerError, match="rebuild it"):
        load_gazetteer(other)


# -- a city of its own: the documented input files, with made-up data -----------------------


def _square(x: float, y: float, size: float) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def _write_city(folder: Path) -> None:
    wards = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"WARD_NAME": str(n + 1)},
                "geometry": {"type": "Polygon", "coordinates": [_square(10.0 + n, 50.0, 1.0)]},
            }
            for n in range(2)
        ],
    }
    settlements = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "InformalSe": "Riverbend Camp",
                    "Inf_Sttlmn": "RIV001",
                    "Town_Geo": "Northtown",
                    "CentroidX": 11.55,
                    "CentroidY": 50.55,
                    "Popn": 300,
                },
                "geometry": {"type": "Polygon", "coordinates": [_square(11.5, 50.5, 0.1)]},
            }
        ],
    }
    (folder / "cct_wards_2021.geojson").write_text(json.dumps(wards))
    (folder / "cct_informal_settlements.geojson").write_text(json.dumps(settlements))
    (folder / "cct_ea2011_to_official_suburb.csv").write_text(
        "EA_CD,SBRB_NM\n1,OLD MILL\n2,OLD MILL\n3,HARBOUR SIDE\n4,NORTHTOWN\n"
    )
    (folder / "wc_suburb_to_town.tsv").write_bytes(
        b"Old Mill\tNorthtown\r\nHarbour Side\tNorthtown\r\nNorthtown\tNorthtown\r\n"
        b"Faraway Farm\tElsewhere\r\n"
    )
    (folder / "cct_suburb_spelling_synonyms.csv").write_text("OLDE MILL, OLD-MILL\n")


def test_a_city_builds_and_selects_its_own_gazetteer(tmp_path: Path, monkeypatch):
    _write_city(tmp_path)
    out = tmp_path / "springfield.json.gz"
    args = ["--data", str(tmp_path), "--city", "Springfield", "--out", str(out)]
    assert main(["gazetteer", "build", *args]) == 0

    monkeypatch.setenv(ENV_VAR, str(out))
    default_gazetteer.cache_clear()
    try:
        gazetteer = default_gazetteer()
        assert gazetteer.city == "Springfield"
        assert gazetteer.match_place("olde mill").best == gazetteer.get("Old Mill")
        assert gazetteer.get("Faraway Farm") is None  # another town's suburb
        camp = gazetteer.match_place("riverbend camp northtown").best
        assert camp is not None
        assert (camp.kind, camp.ward, camp.town) == ("informal_settlement", "2", "Northtown")
        inside = gazetteer.locate(50.55, 11.55)
        assert (inside.ward, inside.settlement, inside.area_type) == (
            "2",
            "Riverbend Camp",
            "informal_settlement",
        )
        assert gazetteer.locate(50.5, 10.5).area_type == "formal"
        assert not gazetteer.locate(52.0, 10.5).in_city
        northtown = gazetteer.get("Northtown")
        assert northtown is not None and northtown.approximate and northtown.ward == "2"
    finally:
        default_gazetteer.cache_clear()


def test_a_city_without_suburb_outlines_is_not_given_cape_towns(tmp_path: Path):
    _write_city(tmp_path)
    document = build_gazetteer(tmp_path, city="Springfield")
    old_mill = next(p for p in document["places"] if p["name"] == "Old Mill")
    assert (old_mill["wards"], old_mill["lat"]) == ([], None)


def test_a_city_s_suburb_outlines_place_its_suburbs(tmp_path: Path):
    _write_city(tmp_path)
    # Old Mill spans both wards and holds the settlement; Harbour Side lies in ward 1 alone.
    outlines = {
        "suburbs": [
            {"name": "OLD MILL", "point": [11.2, 50.5], "rings": [_flat(_square(10.6, 50.2, 1.2))]},
            {
                "name": "HARBOUR SIDE",
                "point": [10.2, 50.9],
                "rings": [_flat(_square(10.1, 50.8, 0.2))],
            },
        ]
    }
    (tmp_path / "cct_official_planning_suburbs.json").write_text(json.dumps(outlines))
    places = {p["name"]: p for p in build_gazetteer(tmp_path, city="Springfield")["places"]}
    old_mill, harbour = places["Old Mill"], places["Harbour Side"]
    assert (old_mill["lon"], old_mill["lat"], old_mill["wards"]) == (11.2, 50.5, ["2", "1"])
    assert (old_mill["area_type"], old_mill["approximate"]) == ("mixed", False)
    assert (harbour["wards"], harbour["area_type"]) == (["1"], "formal")


def _flat(ring: list[list[float]]) -> list[float]:
    return [c for point in ring for c in point]
