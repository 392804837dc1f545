"""Where a request is, as every request stores it: ward, suburb, area type and precision.

One answer for the three ways a place becomes known: a GPS pin (``of_point``), a place the
gazetteer matched in what the resident typed (``of_place``), and the city back end's own
coordinates (``of_point`` with precision ``"point"``). A place that cannot be placed is
``UNKNOWN``: stored as such, never dropped, so figures count it.

Example::

    placement = of_point(gazetteer, -34.0363, 18.6776)
    placement.ward, placement.area_type   # ("94", "formal")
    of_place(gazetteer, gazetteer.get("Makhaza Informal")).suburb   # "Khayelitsha"
"""

from __future__ import annotations

from dataclasses import dataclass

from forms_runtime.gazetteer.folding import fold
from forms_runtime.gazetteer.gazetteer import Gazetteer
from forms_runtime.gazetteer.places import Place

__all__ = ["UNKNOWN", "Placement", "of_place", "of_point", "of_text", "says_where_in"]


@dataclass(frozen=True, slots=True)
class Placement:
    """The place fields of a request (the columns of ``submissions`` of the same names)."""

    ward: str | None  # the main ward
    wards: tuple[str, ...]  # every ward the place reaches into, the main one first
    # The suburb (or town) named, or the one an informal settlement lies in; None where the data
    # cannot say (a pin outside every settlement: the sources hold no suburb shapes).
    suburb: str | None
    # informal_settlement | formal (a point outside every settlement) | mixed (a suburb or town
    # holding settlements) | unknown
    area_type: str
    # pin (the resident's GPS) | point (the city's coordinates) | street (a street in a suburb) |
    # settlement | suburb; None where nothing placed it
    precision: str | None
    settlement: str | None = None  # the informal settlement, where the place is in one

    @property
    def known(self) -> bool:
        return self.precision is not None


UNKNOWN = Placement(ward=None, wards=(), suburb=None, area_type="unknown", precision=None)


def of_point(gazetteer: Gazetteer, lat: float, lon: float, precision: str = "pin") -> Placement:
    """A GPS point: the ward and settlement containing it. Outside the city: ``UNKNOWN``."""
    info = gazetteer.locate(lat, lon)
    if not info.in_city:
        return UNKNOWN
    settlement = gazetteer.get(info.settlement) if info.settlement else None
    return Placement(
        ward=info.ward,
        wards=(info.ward,) if info.ward else (),
        suburb=_suburb_of(gazetteer, settlement) if settlement else None,
        area_type=info.area_type,
        precision=precision,
        settlement=info.settlement,
    )


def of_place(gazetteer: Gazetteer, place: Place, *, street: bool = False) -> Placement:
    """A place the resident named (or picked); ``street`` when the text also says where in it."""
    settled = place.kind == "informal_settlement"
    return Placement(
        ward=place.ward,
        wards=place.wards,
        suburb=_suburb_of(gazetteer, place),
        area_type=place.area_type,
        precision="street" if street else place.precision,
        settlement=place.name if settled else None,
    )


def of_text(gazetteer: Gazetteer, text: str) -> Placement:
    """Stored place text (an older request's address): placed only when one place is clearly
    meant; candidates are a guess nobody confirmed, so they leave it ``UNKNOWN``."""
    best = gazetteer.match_place(text).best if text.strip() else None
    if best is None:
        return UNKNOWN
    street = best.kind != "informal_settlement" and says_where_in(text, best)
    return of_place(gazetteer, best, street=street)


def says_where_in(text: str, place: Place) -> bool:
    """Whether the text says where in the place: "12 Main Road, Sea Point" does, "sea point"
    alone does not."""
    extra = set(fold(text).split()) - set(fold(place.name).split())
    return any(ch.isdigit() for ch in text) or len(extra) >= 2


def _suburb_of(gazetteer: Gazetteer, place: Place) -> str | None:
    """The suburb or town a place is, or lies in; never the city itself (nowhere in
    particular: settlements name it as their town anywhere in the city)."""
    name = place.town if place.kind == "informal_settlement" else place.name
    if name is None or fold(name) == fold(gazetteer.city):
        return None
    return name
