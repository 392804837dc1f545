"""The gazetteer: the places residents name, and the areas a GPS point falls in.

Loaded once from a compiled document (``forms_runtime.gazetteer.build``) and then read-only, so
one instance serves every conversation. ``default_gazetteer()`` loads the packaged Cape Town file,
or the file named by the environment variable ``CITYBOT_GAZETTEER``.

Example::

    gazetteer = default_gazetteer()
    gazetteer.match_place("mitchells plain").best.name   # "Mitchells Plain"
    gazetteer.locate(-34.0363, 18.6776).ward              # "94"
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from forms_runtime.gazetteer.build import FORMAT, FORMAT_VERSION
from forms_runtime.gazetteer.geometry import Area, AreaIndex
from forms_runtime.gazetteer.matching import PlaceIndex
from forms_runtime.gazetteer.places import Place, PlaceMatch, PointInfo

__all__ = [
    "ENV_VAR",
    "PACKAGED_FILE",
    "Gazetteer",
    "GazetteerError",
    "default_gazetteer",
    "load_gazetteer",
]

ENV_VAR = "CITYBOT_GAZETTEER"
PACKAGED_FILE = "cape_town.json.gz"


class GazetteerError(ValueError):
    """The file is not a compiled gazetteer this version understands."""


class Gazetteer:
    """Place names and areas of one city."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        if document.get("format") != FORMAT or document.get("format_version") != FORMAT_VERSION:
            raise GazetteerError(
                f"not a {FORMAT} document of version {FORMAT_VERSION}; rebuild it with"
                " `citybot gazetteer build`"
            )
        self._city = str(document["city"])
        self.sources: tuple[Mapping[str, str], ...] = tuple(document.get("sources", ()))
        places = [_place(p) for p in document["places"]]
        self._by_name = {p.name: p for p in places}
        self._index = PlaceIndex(
            places,
            [p.get("aliases", ()) for p in document["places"]],
            [p.get("parts", ()) for p in document["places"]],
            city=self._city,
        )
        self._ward_outlines = {w["ward"]: _rings(w["rings"]) for w in document["wards"]}
        self._wards = AreaIndex([Area(name, rings) for name, rings in self._ward_outlines.items()])
        settlements = [Area(s["name"], _rings(s["rings"])) for s in document["settlements"]]
        # Where settlement polygons overlap, the smaller one is the more specific answer.
        self._settlements = AreaIndex(sorted(settlements, key=lambda a: a.bbox_area))

    @property
    def city(self) -> str:
        """The city this gazetteer describes, e.g. "Cape Town"."""
        return self._city

    @property
    def places(self) -> tuple[Place, ...]:
        return tuple(self._by_name.values())

    @property
    def ward_outlines(self) -> Mapping[str, Sequence[Sequence[tuple[float, float]]]]:
        """Every ward's rings of (lon, lat) points, outer rings and holes alike (even-odd), by
        ward name in the file's order: what a map of the wards draws."""
        return MappingProxyType(self._ward_outlines)

    def match_place(self, text: str, limit: int = 3) -> PlaceMatch:
        """Match free text ("Site C Khayelitsha", "mitchels plain") to a place.

        ``best`` when one place is clearly meant; otherwise up to ``limit`` ``candidates`` to
        offer; both empty when the text names no known place.
        """
        return self._index.match(text, limit)

    def locate(self, lat: float, lon: float) -> PointInfo:
        """The ward and informal settlement (if any) containing a GPS point."""
        ward_area = self._wards.first_containing(lon, lat)
        settlement_area = self._settlements.first_containing(lon, lat)
        ward = ward_area.name if ward_area is not None else None
        settlement = settlement_area.name if settlement_area is not None else None
        return PointInfo(
            ward=ward,
            settlement=settlement,
            area_type="informal_settlement" if settlement else "formal",
            in_city=ward is not None,
        )

    def wards_near(self, lat: float, lon: float, radius_m: float) -> tuple[str, ...]:
        """The wards a circle reaches: the one containing the centre first, then every ward whose
        boundary is at most ``radius_m`` away (a pin by a ward's edge follows both sides)."""
        inside = self._wards.first_containing(lon, lat)
        near = [a.name for a in self._wards.all_within(lon, lat, radius_m)]
        first = [inside.name] if inside is not None else []
        return tuple(dict.fromkeys([*first, *near]))

    def get(self, name: str) -> Place | None:
        """The place with exactly this display name (one the resident picked from candidates)."""
        return self._by_name.get(name)


def load_gazetteer(path: str | Path) -> Gazetteer:
    """Load a compiled gazetteer (``.json.gz`` or plain ``.json``)."""
    raw = Path(path).read_bytes()
    return _from_bytes(raw, str(path))


@cache
def default_gazetteer() -> Gazetteer:
    """The gazetteer named by ``CITYBOT_GAZETTEER``, else the packaged Cape Town one (cached)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return load_gazetteer(override)
    raw = resources.files("forms_runtime.gazetteer").joinpath("data", PACKAGED_FILE).read_bytes()
    return _from_bytes(raw, PACKAGED_FILE)


def _from_bytes(raw: bytes, label: str) -> Gazetteer:
    try:
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        document = json.loads(text)
    except (OSError, ValueError) as error:
        raise GazetteerError(f"{label}: not a readable gazetteer file ({error})") from error
    if not isinstance(document, dict):
        raise GazetteerError(f"{label}: not a gazetteer document")
    return Gazetteer(document)


def _rings(flat_rings: list[list[float]]) -> list[list[tuple[float, float]]]:
    return [list(zip(ring[::2], ring[1::2], strict=True)) for ring in flat_rings]


def _place(entry: Mapping[str, Any]) -> Place:
    return Place(
        name=entry["name"],
        kind=entry["kind"],
        town=entry.get("town"),
        lat=entry.get("lat"),
        lon=entry.get("lon"),
        wards=tuple(entry.get("wards", ())),
        area_type=entry.get("area_type", "unknown"),
        precision=entry.get("precision", "suburb"),
        approximate=bool(entry.get("approximate", False)),
    )
