"""The gazetteer: place names residents use, and the wards and settlements a point falls in.

Example::

    from forms_runtime.gazetteer import default_gazetteer

    gazetteer = default_gazetteer()
    match = gazetteer.match_place("Enkanini, Khayelitsha")
    info = gazetteer.locate(-34.0363, 18.6776)   # PointInfo(ward="94", ...)
"""

from forms_runtime.gazetteer.build import build_gazetteer, write_gazetteer
from forms_runtime.gazetteer.gazetteer import (
    ENV_VAR,
    Gazetteer,
    GazetteerError,
    default_gazetteer,
    load_gazetteer,
)
from forms_runtime.gazetteer.placement import Placement
from forms_runtime.gazetteer.places import Place, PlaceMatch, PointInfo

__all__ = [
    "ENV_VAR",
    "Gazetteer",
    "GazetteerError",
    "Place",
    "PlaceMatch",
    "Placement",
    "PointInfo",
    "build_gazetteer",
    "default_gazetteer",
    "load_gazetteer",
    "write_gazetteer",
]
