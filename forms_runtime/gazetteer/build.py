"""Compile a city's open data into the compact gazetteer document the runtime loads.

The inputs (one folder; docs/gazetteer.md describes every field and where Cape Town's came from):

- ``cct_wards_2021.geojson``: ward polygons, property ``WARD_NAME``.
- ``cct_informal_settlements.geojson``: settlement polygons, properties ``InformalSe`` (name),
  ``Inf_Sttlmn`` (id), ``Town_Geo`` (town), ``CentroidX``/``CentroidY`` (lon/lat), ``Popn``.
- ``cct_ea2011_to_official_suburb.csv``: column ``SBRB_NM``, the city's official suburb names.
- ``wc_suburb_to_town.tsv``: ``suburb<TAB>town`` rows (a whole province; the city's part is
  chosen by ``_city_towns``).
- ``cct_suburb_spelling_synonyms.csv``: ``VARIANT, CANONICAL`` rows (optional).
- ``cct_official_planning_suburbs.json``: the outlines of the city's official suburbs (optional;
  for Cape Town the project carries its own copy in ``sources/``, see ``suburb_outlines_path``).

The output is plain JSON (written gzipped by ``write_gazetteer``): wards and settlement polygons as
flat ``[lon, lat, lon, lat, ...]`` rings rounded to 5 decimals, and the place list with every
derived field already decided, so loading is parsing and nothing else.

Example::

    document = build_gazetteer(Path("../shared/data"))
    write_gazetteer(document, Path("forms_runtime/gazetteer/data/cape_town.json.gz"))
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forms_runtime.gazetteer.folding import compact, fold
from forms_runtime.gazetteer.geometry import Area, AreaIndex, rings_of, round_ring

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "PACKAGED_OUTLINES",
    "SOURCES",
    "build_gazetteer",
    "suburb_outlines_path",
    "write_gazetteer",
]

FORMAT = "citybot-gazetteer"
# 2: places carry ``wards`` (a list, main ward first) and ``precision`` instead of ``ward``.
FORMAT_VERSION = 2

WARDS_FILE = "cct_wards_2021.geojson"
SETTLEMENTS_FILE = "cct_informal_settlements.geojson"
SUBURBS_FILE = "cct_ea2011_to_official_suburb.csv"
SUBURB_TOWNS_FILE = "wc_suburb_to_town.tsv"
SYNONYMS_FILE = "cct_suburb_spelling_synonyms.csv"
OUTLINES_FILE = "cct_official_planning_suburbs.json"
# Cape Town's suburb outlines travel with the project (they are not among ../shared/data), so a
# fresh clone builds the same gazetteer. Another city's come in its own data folder.
PACKAGED_OUTLINES = Path(__file__).parent / "sources" / OUTLINES_FILE

# Provenance travels inside the compiled file, so the data never loses where it came from.
SOURCES: tuple[dict[str, str], ...] = (
    {
        "file": WARDS_FILE,
        "what": "electoral ward polygons (2021 boundaries)",
        "source": "City of Cape Town Open Data Portal, Wards layer (credit: City of Cape Town and"
        " the Municipal Demarcation Board), via jranderee/cape-town-web-map",
        "licence": "City of Cape Town Open Data Portal terms of use",
    },
    {
        "file": SETTLEMENTS_FILE,
        "what": "informal settlement polygons, names, towns, centroids",
        "source": "City of Cape Town GIS data (open.africa), via"
        " iandurbach/exploratory-data-analysis",
        "licence": "City of Cape Town open data terms",
    },
    {
        "file": SUBURBS_FILE,
        "what": "official suburb names (SBRB_NM)",
        "source": "cityofcapetown/covid-19-data lu_ea_sbrb.csv",
        "licence": "City of Cape Town",
    },
    {
        "file": SUBURB_TOWNS_FILE,
        "what": "suburb to town (Western Cape)",
        "source": "cityofcapetown/cape-of-good-place-names pvh_scraper/sinjani_suburbs.txt",
        "licence": "MIT, (c) 2020 City of Cape Town",
    },
    {
        "file": SYNONYMS_FILE,
        "what": "suburb spelling variants",
        "source": "cityofcapetown/cape-of-good-place-names pvh_scraper/synonyms.csv",
        "licence": "MIT, (c) 2020 City of Cape Town",
    },
    {
        "file": OUTLINES_FILE,
        "what": "official planning suburb outlines (OFC_SBRB_NAME), simplified to about 40 m",
        "source": "City of Cape Town Open Data Portal, Official Planning Suburbs layer, via"
        " richardwooding/suburble docs/data/suburbs.json (commit 50c65a4), lon/lat"
        " reconstructed by citybot from its normalised frame",
        "licence": "City of Cape Town Open Data Portal terms of use",
    },
)

# A town whose tsv suburbs include at least this many official city suburbs is the city's own.
# One or two shared names prove nothing: Newlands is also in Beaufort West, Panorama in Worcester.
_MIN_OFFICIAL_SUBURBS = 3
# A suburb's or town's point is the mean of its settlement centroids only if they all lie this
# close to it; the mean of scattered centroids would be somewhere nobody named.
_MAX_SPREAD_KM = 2.5
# Words that keep capitals when an official UPPER CASE name is title-cased.
_KEEP_UPPER = {"cbd", "cput", "uwc", "wp", "ii", "iii", "iv", "n1", "tra", "ktc"}
# Rows of the suburb list that hold a scraper's placeholder, not a name ("Outside\tKommetjie").
_PLACEHOLDERS = {"outside", "unclear"}
_QUALIFIER = re.compile(r"\s+-\s*")
_PLACES = 5  # decimals kept: about 1 m
# A settlement's wards are found by sampling a grid of points over each of its polygons. A ward
# holding less than this share of the points is where the two layers were digitised a few metres
# apart along a shared road, not a ward the settlement reaches into.
_SAMPLES = 24
_MIN_WARD_SHARE = 0.05
# A suburb whose outline is at least this much informal settlement is one (Barnet Molokwana
# Corner); a suburb holding less, but some, is "mixed".
_MOSTLY_SETTLEMENT = 0.9


@dataclass
class _Draft:
    """A place while the build is still deciding its fields."""

    name: str
    kind: str
    town: str | None = None
    lat: float | None = None
    lon: float | None = None
    # Every ward the place reaches into, the ward of (lat, lon) first.
    wards: list[str] = field(default_factory=list)
    area_type: str = "unknown"
    approximate: bool = False
    # Other full names ("m plain", the bare name of "Enkanini informal settlement").
    aliases: set[str] = field(default_factory=set)
    # Parts of a combined name ("Zwelitsha / Enkanini"): they match a little less strongly.
    parts: set[str] = field(default_factory=set)
    # The settlement places that say where this suburb or town is.
    evidence: list[_Draft] = field(default_factory=list)

    @property
    def precision(self) -> str:
        """How closely the name alone says where: a settlement, or a suburb (or a whole town)."""
        return "settlement" if self.kind == "informal_settlement" else "suburb"

    def document(self) -> dict[str, Any]:
        key = fold(self.name)
        return {
            "name": self.name,
            "kind": self.kind,
            "town": self.town,
            "lat": self.lat,
            "lon": self.lon,
            "wards": self.wards,
            "area_type": self.area_type,
            "precision": self.precision,
            "approximate": self.approximate,
            "aliases": sorted(a for a in self.aliases if a and a != key),
            "parts": sorted(p for p in self.parts - self.aliases if p and p != key),
        }


@dataclass
class _Settlement:
    name: str
    town: str | None
    centroid: tuple[float, float]
    population: int
    rings: list[list[list[float]]]


def suburb_outlines_path(data_dir: Path, city: str) -> Path | None:
    """The suburb outlines in ``data_dir``; else, for Cape Town, the project's own copy."""
    path = Path(data_dir) / OUTLINES_FILE
    if path.exists():
        return path
    return PACKAGED_OUTLINES if city == "Cape Town" else None


def build_gazetteer(data_dir: Path, *, city: str = "Cape Town") -> dict[str, Any]:
    """Compile the source files in ``data_dir`` into the gazetteer document (plain JSON data)."""
    data_dir = Path(data_dir)
    outlines_path = suburb_outlines_path(data_dir, city)
    outlines = _read_outlines(outlines_path) if outlines_path is not None else {}
    wards = _read_wards(data_dir / WARDS_FILE)
    ward_areas = [Area(ward, rings) for ward, rings in wards]
    settlements = _read_settlements(data_dir / SETTLEMENTS_FILE)
    official = _read_official_suburbs(data_dir / SUBURBS_FILE)
    suburb_towns = _read_suburb_towns(data_dir / SUBURB_TOWNS_FILE)
    synonyms_path = data_dir / SYNONYMS_FILE
    synonyms = _read_synonyms(synonyms_path) if synonyms_path.exists() else []

    ward_index = AreaIndex(ward_areas)

    def ward_of(lon: float, lat: float) -> str | None:
        area = ward_index.first_containing(lon, lat)
        return area.name if area is not None else None

    settlement_towns = {s.town for s in settlements if s.town}
    towns, listed_towns = _city_towns(city, suburb_towns, official, settlement_towns)
    suburb_towns = [(s, t) for s, t in suburb_towns if compact(fold(t)) in listed_towns]
    spelling = _preferred_spellings(suburb_towns, towns, settlements)
    areas = _areas(suburb_towns, official, towns, spelling)

    # Settlement towns are written as the matching suburb or town is ("Mitchell's Plain" and
    # "Mitchells Plain" are one town; "Du Noon" is the suburb Dunoon).
    for settlement in settlements:
        if settlement.town:
            settlement.town = areas[compact(fold(settlement.town))].name

    places, settlement_geometry = _settlement_places(settlements, set(areas), ward_of)
    for place in places:
        if place.town:
            areas[compact(fold(place.town))].evidence.append(place)
    _add_name_evidence(areas, places)
    settled_towns = {compact(fold(p.town)) for p in places if p.town}
    in_outline = _settlements_in_outlines(settlement_geometry, outlines)
    settlement_index = AreaIndex([Area(n, r) for n, r in settlement_geometry])
    for key, area in areas.items():
        outline = outlines.get(key)
        if area.kind == "suburb" and outline is not None:
            # A town is wider than the planning suburb named after it (Khayelitsha's outline is
            # 1 km2 of a town over ten wards): only suburbs take their outline.
            _place_from_outline(area, outline, ward_of, in_outline[key], settlement_index)
            continue
        # Settlements give "Cape Town" as their town anywhere in the city (16 wards, 20 km
        # apart): the city's own name is not placed, a point there would be nowhere in particular.
        if compact(fold(area.name)) != compact(fold(city)):
            _place_from_evidence(area, ward_of)
        area.area_type = _area_type(area, settled_towns)
    _add_synonyms([*places, *areas.values()], synonyms)

    all_places = sorted([*places, *areas.values()], key=lambda p: (fold(p.name), p.kind))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "city": city,
        "sources": list(SOURCES),
        "wards": [{"ward": ward, "rings": _flat(rings)} for ward, rings in wards],
        "settlements": [{"name": n, "rings": _flat(r)} for n, r in settlement_geometry],
        "places": [p.document() for p in all_places],
    }


def write_gazetteer(document: dict[str, Any], path: Path) -> None:
    """Write the document gzipped, byte-for-byte reproducible (no timestamp in the gzip header)."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    Path(path).write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))


# -- reading the sources -------------------------------------------------------------------


def _read_wards(path: Path) -> list[tuple[str, list[list[list[float]]]]]:
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    wards = [
        (
            str(f["properties"]["WARD_NAME"]).strip(),
            [round_ring(r) for r in rings_of(f["geometry"])],
        )
        for f in features
    ]
    return sorted(wards, key=lambda w: (len(w[0]), w[0]))


def _read_settlements(path: Path) -> list[_Settlement]:
    out = []
    for feature in json.loads(path.read_text(encoding="utf-8"))["features"]:
        p = feature["properties"]
        out.append(
            _Settlement(
                name=" ".join(str(p["InformalSe"]).split()),
                town=" ".join(str(p.get("Town_Geo") or "").split()) or None,
                centroid=(
                    round(float(p["CentroidX"]), _PLACES),
                    round(float(p["CentroidY"]), _PLACES),
                ),
                population=int(p.get("Popn") or 0),
                rings=[round_ring(r) for r in rings_of(feature["geometry"])],
            )
        )
    return out


def _read_official_suburbs(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        names = {" ".join(row["SBRB_NM"].split()) for row in csv.DictReader(f)}
    return sorted(n for n in names if n)


def _read_suburb_towns(path: Path) -> list[tuple[str, str]]:
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        for line in f:
            suburb, _, town = line.rstrip("\r\n").partition("\t")
            if suburb.strip() and town.strip():
                rows.append((" ".join(suburb.split()), " ".join(town.split())))
    return rows


@dataclass
class _Outline:
    """An official suburb's outline: its rings (lon/lat) and the layer's representative point."""

    name: str
    point: tuple[float, float]
    rings: list[list[list[float]]]


def _read_outlines(path: Path) -> dict[str, _Outline]:
    """Outlines by compact key. Two suburbs that fold to one name ("Goede Hoop" near the Strand
    and "Goedehoop" in Somerset West) are different places: a name cannot say which, so neither
    outline places it."""
    by_key: dict[str, list[_Outline]] = defaultdict(list)
    for suburb in json.loads(path.read_text(encoding="utf-8"))["suburbs"]:
        rings = [[[r[i], r[i + 1]] for i in range(0, len(r), 2)] for r in suburb["rings"]]
        lon, lat = suburb["point"]
        name = " ".join(str(suburb["name"]).split())
        by_key[compact(fold(name))].append(_Outline(name, (float(lon), float(lat)), rings))
    return {key: found[0] for key, found in by_key.items() if len(found) == 1}


def _read_synonyms(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [(row[0], row[1]) for row in csv.reader(f) if len(row) >= 2]


# -- deciding which names are the city's ---------------------------------------------------


def _city_towns(
    city: str,
    suburb_towns: Sequence[tuple[str, str]],
    official: Sequence[str],
    settlement_towns: Iterable[str],
) -> tuple[set[str], set[str]]:
    """Compact keys of the city's towns, and of those whose suburb list is the city's.

    See docs/gazetteer.md, "Towns". The two differ for a settlement's town that has a namesake
    elsewhere: the settlement Witsand is the city's, the list's town Witsand is on the Breede.
    """
    official_keys = {compact(fold(n)) for n in official}
    counts: dict[str, int] = defaultdict(int)
    for suburb, town in suburb_towns:
        counts[compact(fold(town))] += compact(fold(suburb)) in official_keys
    towns = {compact(fold(t)) for t in settlement_towns}
    city_key = compact(fold(city))
    for _, town in suburb_towns:
        key = compact(fold(town))
        if counts[key] >= _MIN_OFFICIAL_SUBURBS or city_key in key:
            towns.add(key)
    # A town named like an official suburb is the city's, unless the list also puts that suburb
    # in one of the city's towns: then the town is a namesake elsewhere (Strandfontein on the
    # West Coast; the city's Strandfontein is in Mitchells Plain).
    namesakes = {
        compact(fold(suburb))
        for suburb, town in suburb_towns
        if compact(fold(town)) in towns and compact(fold(town)) != compact(fold(suburb))
    }
    for _, town in suburb_towns:
        key = compact(fold(town))
        if key in official_keys and key not in namesakes:
            towns.add(key)
    return towns, towns - namesakes


def _preferred_spellings(
    suburb_towns: Sequence[tuple[str, str]], towns: set[str], settlements: Sequence[_Settlement]
) -> dict[str, str]:
    """Mixed-case spellings by compact key: the tsv's first, then settlement towns."""
    spelling: dict[str, str] = {}
    for suburb, town in suburb_towns:
        if compact(fold(town)) in towns:
            spelling.setdefault(compact(fold(town)), town)
            spelling.setdefault(compact(fold(suburb)), suburb)
    for settlement in settlements:
        if settlement.town:
            spelling.setdefault(compact(fold(settlement.town)), settlement.town)
    return spelling


def _title(official_name: str) -> str:
    """Title-case an UPPER CASE official name: "BELHAR EXT 1" -> "Belhar Ext 1"."""

    def cap(match: re.Match[str]) -> str:
        word = match.group(0)
        return word.upper() if word.lower() in _KEEP_UPPER else word.capitalize()

    titled = re.sub(r"[A-Za-z0-9]+", cap, official_name)
    return re.sub(r"'S\b", "'s", titled)  # "SIMON'S TOWN" -> "Simon's Town", not "Simon'S"


def _areas(
    suburb_towns: Sequence[tuple[str, str]],
    official: Sequence[str],
    towns: set[str],
    spelling: dict[str, str],
) -> dict[str, _Draft]:
    """Suburbs and towns by compact key; a town named like a suburb is that one place."""
    towns_of: dict[str, set[str]] = defaultdict(set)
    for suburb, town in suburb_towns:
        if compact(fold(town)) in towns:
            towns_of[compact(fold(suburb))].add(spelling[compact(fold(town))])

    areas: dict[str, _Draft] = {}
    for name in official:
        key = compact(fold(name))
        draft = areas.setdefault(key, _Draft(spelling.get(key) or _title(name), "suburb"))
        candidates = towns_of.get(key, set())
        base, qualifier = (*_QUALIFIER.split(name, maxsplit=1), "")[:2]
        if len(candidates) == 1:
            draft.town = next(iter(candidates))
        elif qualifier and compact(fold(qualifier)) in towns:
            draft.town = spelling[compact(fold(qualifier))]
        if qualifier:
            # "AVONDALE - PAROW": residents say "Avondale"; several suburbs may share it.
            draft.aliases.add(fold(base))
        if "/" in name:
            draft.parts.update(fold(part) for part in name.split("/"))
    for key in towns:
        if key in areas:
            areas[key].town = areas[key].name  # "Guguletu" is a suburb and its own town
        else:
            areas[key] = _Draft(spelling[key], "town")
    for suburb, town in suburb_towns:
        town_key = compact(fold(town))
        if town_key not in towns or fold(suburb) in _PLACEHOLDERS:
            continue
        suburb_key = compact(fold(suburb))
        if suburb_key not in areas:
            areas[suburb_key] = _Draft(spelling[suburb_key], "suburb", town=spelling[town_key])
        areas[suburb_key].aliases.add(fold(suburb))
    return areas


# -- settlements -----------------------------------------------------------------------------


def _settlement_places(
    settlements: Sequence[_Settlement], area_keys: set[str], ward_of: Any
) -> tuple[list[_Draft], list[tuple[str, list[list[list[float]]]]]]:
    """One place per settlement name and town; polygons under that place's display name."""
    groups: dict[tuple[str, str | None], list[_Settlement]] = defaultdict(list)
    for s in settlements:
        groups[(compact(fold(s.name)), s.town)].append(s)
    towns_by_name: dict[str, set[str | None]] = defaultdict(set)
    for key, town in groups:
        towns_by_name[key].add(town)

    places: list[_Draft] = []
    geometry: list[tuple[str, list[list[list[float]]]]] = []
    for (key, town), members in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or "")):
        main = max(members, key=lambda s: s.population)  # the place residents most likely mean
        name = main.name
        if len(towns_by_name[key]) > 1:
            name = f"{name} ({town})" if town else name
        if key in area_keys:
            name = f"{name} informal settlement"
        lon, lat = _inside_point(main)
        place = _Draft(
            name,
            "informal_settlement",
            town=town,
            lat=lat,
            lon=lon,
            wards=_settlement_wards(members, ward_of(lon, lat), ward_of),
            area_type="informal_settlement",
            aliases={fold(main.name)},
        )
        # "Siyahlala - Langa": residents say "Siyahlala"; the words after " - " say which one.
        place.aliases.add(fold(_QUALIFIER.split(main.name, maxsplit=1)[0]))
        parts = re.split(r"\s+/\s+", main.name)
        if len(parts) > 1:
            place.parts = {fold(_QUALIFIER.split(p, maxsplit=1)[0]) for p in parts}
        place.aliases = {a for a in place.aliases if _distinctive(a)}
        place.parts = {p for p in place.parts if _distinctive(p)}
        places.append(place)
        geometry.extend((name, s.rings) for s in members)
    return places, geometry


def _settlement_wards(members: Sequence[_Settlement], main: str | None, ward_of: Any) -> list[str]:
    """The wards a settlement's polygons reach into, ``main`` (the ward of its point) first."""
    return _main_first(main, _wards_reached([Area(m.name, m.rings) for m in members], ward_of))


def _samples(area: Area) -> Iterable[tuple[float, float]]:
    """A grid of points over the area's box, the ones inside the area."""
    width, height = area.max_x - area.min_x, area.max_y - area.min_y
    for i, j in itertools.product(range(_SAMPLES), repeat=2):
        x = area.min_x + (i + 0.5) * width / _SAMPLES
        y = area.min_y + (j + 0.5) * height / _SAMPLES
        if area.contains(x, y):
            yield x, y


def _wards_reached(areas: Sequence[Area], ward_of: Any) -> list[str]:
    """Every ward holding at least ``_MIN_WARD_SHARE`` of the areas' sample points."""
    counts: Counter[str] = Counter()
    for area in areas:
        for x, y in _samples(area):
            ward = ward_of(x, y)
            if ward is not None:
                counts[ward] += 1
    total = sum(counts.values())
    return [w for w, n in counts.items() if n >= _MIN_WARD_SHARE * total]


def _main_first(main: str | None, wards: Iterable[str]) -> list[str]:
    """``main`` then the other wards in number order ("9" before "10")."""
    others = sorted(set(wards) - {main}, key=lambda w: (len(w), w))
    return [main, *others] if main is not None else others


def _distinctive(alias: str) -> bool:
    """A name part worth matching on its own: not a bare number, not one or two letters."""
    letters = sum(c.isalpha() for c in alias)
    return letters >= 3


def _inside_point(settlement: _Settlement) -> tuple[float, float]:
    """The recorded centroid, or, where it falls outside its own polygon, a point inside it."""
    return _point_inside(settlement.name, settlement.rings, settlement.centroid)


def _point_inside(
    name: str, rings: Sequence[Sequence[Sequence[float]]], point: tuple[float, float]
) -> tuple[float, float]:
    """``point`` when it lies inside the rings, else the middle of their widest inside stretch
    along their middle latitude (a centroid may fall outside a curved or hollow polygon)."""
    area = Area(name, rings)
    if area.contains(*point):
        return point
    # The recorded centroid lies outside the polygon (Koekoe's does, by about 55 m): take the
    # middle of the widest inside stretch along the polygon's middle latitude.
    y = (area.min_y + area.max_y) / 2
    crossings = sorted(
        x1 + (x2 - x1) * (y - y1) / (y2 - y1)
        for ring in rings
        for (x1, y1), (x2, y2) in itertools.pairwise(ring)
        if (y1 > y) != (y2 > y)
    )
    spans = list(zip(crossings[::2], crossings[1::2], strict=False))
    left, right = max(spans, key=lambda s: s[1] - s[0])
    return round((left + right) / 2, _PLACES), round(y, _PLACES)


# -- suburbs and towns: placed only where the settlements honestly place them ------------------


def _add_name_evidence(areas: dict[str, _Draft], places: Sequence[_Draft]) -> None:
    """A settlement named after a suburb ("Wallacedene Infills ...") says where that suburb is,
    when their towns agree (the settlement "Green Point" is in Khayelitsha, not the suburb)."""
    for place in places:
        words = fold(place.name).split()
        for n in range(len(words), 0, -1):
            area = areas.get("".join(words[:n]))
            if area is None or area.kind != "suburb":
                continue
            if place.town and compact(fold(place.town)) == "".join(words[:n]):
                break  # already counted as one of the suburb's own settlements
            if area.town is None or area.town == place.town:
                area.evidence.append(place)
            break


def _place_from_evidence(area: _Draft, ward_of: Any) -> None:
    """Wards, and a representative point, of a suburb or town from the settlements in it.

    The wards are every ward its settlements reach into. The point is the settlements' mean
    where they lie close together, else the point of the settlement nearest all the others (a
    mean of scattered settlements would be somewhere nobody named). Either way it is estimated.
    """
    if not area.evidence:
        return
    points = [(p.lon or 0.0, p.lat or 0.0) for p in area.evidence]
    lon = sum(x for x, _ in points) / len(points)
    lat = sum(y for _, y in points) / len(points)
    if max(_km(lon, lat, x, y) for x, y in points) > _MAX_SPREAD_KM:
        lon, lat = min(points, key=lambda a: sum(_km(a[0], a[1], x, y) for x, y in points))
    area.lon, area.lat = round(lon, _PLACES), round(lat, _PLACES)
    area.approximate = True
    reached = [w for p in area.evidence for w in p.wards]
    area.wards = _main_first(ward_of(area.lon, area.lat), reached)


def _settlements_in_outlines(
    settlement_geometry: Sequence[tuple[str, list[list[list[float]]]]],
    outlines: dict[str, _Outline],
) -> dict[str, set[str]]:
    """The settlements (display names) lying in each outline, by the outline's key: those with
    at least ``_MIN_WARD_SHARE`` of their sample points inside it (less is where the two layers
    were drawn a few metres apart along a shared road)."""
    found: dict[str, set[str]] = defaultdict(set)
    if not outlines:
        return found
    index = AreaIndex([Area(key, o.rings) for key, o in outlines.items()])
    for name, rings in settlement_geometry:
        counts: Counter[str] = Counter()
        points = list(_samples(Area(name, rings)))
        for x, y in points:
            for outline in index.all_containing(x, y):
                counts[outline.name] += 1
        for key, n in counts.items():
            if n >= _MIN_WARD_SHARE * len(points):
                found[key].add(name)
    return found


def _place_from_outline(
    area: _Draft,
    outline: _Outline,
    ward_of: Any,
    settlements: set[str],
    settlement_index: AreaIndex,
) -> None:
    """Point, wards and area type of an official suburb, from its outline.

    The point is the layer's (the centroid of the suburb's largest part) when it lies inside
    the outline, else a point inside. The wards are every ward the outline reaches into (the
    settlements' grid and 5% rule), plus those of the settlements recorded in the suburb by
    name or town: a suburb that is also a town ("Milnerton") is named for both. The point is
    the City's, not an estimate: ``approximate`` stays false.
    """
    lon, lat = _point_inside(outline.name, outline.rings, outline.point)
    area.lon, area.lat = round(lon, _PLACES), round(lat, _PLACES)
    shape = Area(outline.name, outline.rings)
    reached = [*_wards_reached([shape], ward_of), *(w for p in area.evidence for w in p.wards)]
    area.wards = _main_first(ward_of(area.lon, area.lat), reached)
    area.approximate = False
    points = list(_samples(shape))
    informal = sum(settlement_index.first_containing(x, y) is not None for x, y in points)
    if points and informal >= _MOSTLY_SETTLEMENT * len(points):
        area.area_type = "informal_settlement"
    elif settlements or area.evidence:
        area.area_type = "mixed"
    else:
        area.area_type = "formal"


def _area_type(area: _Draft, settled_towns: set[str]) -> str:
    """ "mixed" where informal settlements are recorded in the suburb or town (a resident naming
    it may or may not live in one); "formal" where none is recorded in its whole town; else
    "unknown": its town holds settlements and the data does not say whether this suburb does.
    """
    if area.evidence:
        return "mixed"
    town = area.name if area.kind == "town" else area.town
    if town is not None and compact(fold(town)) not in settled_towns:
        return "formal"
    return "unknown"


def _km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance in km; an equirectangular estimate is exact enough across one city."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6371.0 * math.hypot(x, y)


def _add_synonyms(places: Sequence[_Draft], synonyms: Sequence[tuple[str, str]]) -> None:
    """Spelling variants ("MITHCHELLS PLAIN") become aliases of the place they spell."""
    by_key: dict[str, _Draft] = {}
    for place in places:
        by_key.setdefault(compact(fold(place.name)), place)
    for variant, canonical in synonyms:
        spelt = by_key.get(compact(fold(canonical)))
        if spelt is not None and _distinctive(fold(variant)):
            spelt.aliases.add(fold(variant))


def _flat(rings: Sequence[Sequence[Sequence[float]]]) -> list[list[float]]:
    return [[c for position in ring for c in position[:2]] for ring in rings]
