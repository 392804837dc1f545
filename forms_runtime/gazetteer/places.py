"""The values the gazetteer hands to the engine: places, match results, facts about a point.

Example::

    Place("Koekoe", "informal_settlement", "Cape Town", -33.91252, 18.49913, "56",
          "informal_settlement")
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Place", "PlaceMatch", "PointInfo"]


@dataclass(frozen=True, slots=True)
class Place:
    """A place residents name: an informal settlement, an official suburb or a town."""

    name: str  # display name, unique in its gazetteer: "Enkanini", "Mitchells Plain"
    kind: str  # "informal_settlement", "suburb" or "town"
    town: str | None
    lat: float | None
    lon: float | None
    ward: str | None  # the ward containing (lat, lon), e.g. "94"
    area_type: str  # "informal_settlement", "formal" or "unknown"
    approximate: bool = False  # True when (lat, lon) is estimated, not measured


@dataclass(frozen=True, slots=True)
class PlaceMatch:
    """What a resident's place text matched: one clear place, a few to choose from, or nothing."""

    best: Place | None
    candidates: tuple[Place, ...] = ()


@dataclass(frozen=True, slots=True)
class PointInfo:
    """What the city's areas say about a GPS point."""

    ward: str | None
    settlement: str | None  # display name of the informal settlement containing the point
    area_type: str  # "informal_settlement" inside a settlement polygon, else "formal"
    in_city: bool  # inside any ward
