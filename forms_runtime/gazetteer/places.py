"""The values the gazetteer hands to the engine: places, match results, facts about a point.

Example::

    Place("Koekoe", "informal_settlement", "Cape Town", -33.91252, 18.49913, ("56",),
          "informal_settlement", "settlement")
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
    lat: float | None  # a representative point: inside the place where the data allows
    lon: float | None
    # Every ward the place reaches into, the ward containing (lat, lon) first: ("94", "95").
    # Empty where the data cannot place it (docs/gazetteer.md says which places, and why).
    wards: tuple[str, ...]
    # "informal_settlement"; "mixed" (a suburb or town holding recorded settlements); "formal"
    # (no settlement recorded in its town); "unknown" (the data cannot tell).
    area_type: str
    precision: str  # how closely the name says where: "settlement" or "suburb"
    approximate: bool = False  # True when (lat, lon) is estimated, not measured

    @property
    def ward(self) -> str | None:
        """The main ward: the one containing (lat, lon), else None."""
        return self.wards[0] if self.wards else None


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
