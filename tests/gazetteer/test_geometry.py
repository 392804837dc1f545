import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.gazetteer.geometry import (
    METRES_PER_DEGREE,
    Area,
    AreaIndex,
    metres_between,
    rings_of,
    round_ring,
)

SQUARE = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]]
HOLE = [[4.0, 4.0], [6.0, 4.0], [6.0, 6.0], [4.0, 6.0], [4.0, 4.0]]
FAR = [[20.0, 20.0], [22.0, 20.0], [22.0, 22.0], [20.0, 22.0], [20.0, 20.0]]


def test_polygon_with_a_hole():
    area = Area("a", rings_of({"type": "Polygon", "coordinates": [SQUARE, HOLE]}))
    assert area.contains(1.0, 1.0)
    assert not area.contains(5.0, 5.0)  # in the hole
    assert not area.contains(11.0, 5.0)
    assert area.contains(7.0, 5.0)  # beside the hole, on the hole's latitude


def test_multipolygon_parts():
    area = Area("m", rings_of({"type": "MultiPolygon", "coordinates": [[SQUARE], [FAR]]}))
    assert area.contains(21.0, 21.0)
    assert area.contains(9.0, 9.0)
    assert not area.contains(15.0, 15.0)


def test_many_bands_agree_with_a_plain_scan():
    # A zigzag ring with many edges, so the band index is really used.
    top = [[float(x), 10.0 + (x % 2)] for x in range(0, 101)]
    ring = [[0.0, 0.0], [100.0, 0.0], *reversed(top), [0.0, 0.0]]
    area = Area("z", [ring])
    for x10 in range(5, 1000, 37):
        for y10 in range(-5, 120, 7):
            x, y = x10 / 10, y10 / 10
            inside = 0 <= y < 10 + (0.5 if x % 2 else 0) and 0 < x < 100
            if abs(y - 10) > 1.01 or y < 10:
                assert area.contains(x, y) == inside, (x, y)


def test_round_ring_rounds_and_closes():
    ring = round_ring([[18.1234567, -34.1234567], [18.1234568, -34.1234568], [18.2, -34.2]])
    assert ring[0] == [18.12346, -34.12346]
    assert ring[-1] == ring[0]
    assert len(ring) == 3  # the repeat left by rounding is dropped


def test_other_geometry_is_refused():
    with pytest.raises(ValueError, match="Polygon"):
        rings_of({"type": "Point", "coordinates": [0, 0]})


def _first_by_scan(areas: list[Area], x: float, y: float) -> Area | None:
    return next((a for a in areas if a.contains(x, y)), None)


# Overlapping boxes and parts, a hole, and a degenerate strip, in an order that is not by size.
_AREAS = [
    Area("square-with-hole", rings_of({"type": "Polygon", "coordinates": [SQUARE, HOLE]})),
    Area("in-the-hole", [HOLE]),
    Area("parts", rings_of({"type": "MultiPolygon", "coordinates": [[FAR], [HOLE]]})),
    Area("strip", [[[0.0, 0.0], [30.0, 30.0], [30.0, 30.5], [0.0, 0.0]]]),
]
_INDEX = AreaIndex(_AREAS)
_coordinate = st.one_of(
    st.floats(min_value=-5, max_value=35),
    st.sampled_from([0.0, 4.0, 6.0, 10.0, 20.0, 22.0, 30.0, 30.5, math.nan, math.inf]),
)


@given(_coordinate, _coordinate)
@example(5.0, 5.0)
@example(21.0, 21.0)
def test_the_grid_finds_what_a_scan_in_order_finds(x: float, y: float) -> None:
    assert _INDEX.first_containing(x, y) is _first_by_scan(_AREAS, x, y)


_CITY = default_gazetteer()


@given(st.floats(min_value=18.2, max_value=19.1), st.floats(min_value=-34.5, max_value=-33.3))
@example(18.6776, -34.0363)
def test_the_grid_over_the_city_finds_what_a_scan_finds(lon: float, lat: float) -> None:
    for index in (_CITY._wards, _CITY._settlements):
        assert index.first_containing(lon, lat) is _first_by_scan(list(index.areas), lon, lat)


def _near_the_box_edges(area: Area) -> list[tuple[float, float]]:
    """Points just inside an area near the vertices that set its bounding box: they fall in the
    first and last rows and columns of grid cells the area is listed in."""
    vertices = [(band[i], band[i + 1]) for band in area._bands for i in range(0, len(band), 2)]
    middle = ((area.min_x + area.max_x) / 2, (area.min_y + area.max_y) / 2)
    extremes = [
        min(vertices),
        max(vertices),
        min(vertices, key=lambda v: v[1]),
        max(vertices, key=lambda v: v[1]),
    ]
    return [
        (x + (middle[0] - x) * share, y + (middle[1] - y) * share)
        for x, y in extremes
        for share in (0.0, 1e-6, 1e-4, 1e-2)
    ]


def test_points_at_the_edges_of_every_box_are_found_as_a_scan_finds_them() -> None:
    for index in (_CITY._wards, _CITY._settlements):
        areas = list(index.areas)
        for area in areas:
            for x, y in _near_the_box_edges(area):
                assert index.first_containing(x, y) is _first_by_scan(areas, x, y), (
                    area.name,
                    x,
                    y,
                )


def test_an_empty_index_contains_nothing() -> None:
    assert AreaIndex([]).first_containing(0.0, 0.0) is None


# A ward-sized square near Cape Town (about 1.1 km a side): its south edge runs along -34.0.
BLOCK = [[18.5, -34.0], [18.51, -34.0], [18.51, -33.99], [18.5, -33.99], [18.5, -34.0]]


def _south_of_block(metres: float) -> tuple[float, float]:
    """A point ``metres`` south of the block's horizontal south edge, below its middle."""
    return 18.505, -34.0 - metres / METRES_PER_DEGREE


def test_within_a_radius_of_an_area_just_inside_and_just_outside():
    area = Area("b", [BLOCK])
    assert area.within(18.505, -33.995, 0)  # inside, whatever the radius
    assert area.within(*_south_of_block(499.5), 500)
    assert not area.within(*_south_of_block(500.5), 500)
    # Past a corner the distance is to the corner itself.
    corner_gap = 400 / METRES_PER_DEGREE
    east = corner_gap / math.cos(math.radians(-34.0))
    diagonal = math.hypot(400, 400)
    assert area.within(18.51 + east, -34.0 - corner_gap, diagonal + 1)
    assert not area.within(18.51 + east, -34.0 - corner_gap, diagonal - 1)


def test_metres_between_agrees_with_the_great_circle_nearby():
    # Haversine over 2 km at Cape Town's latitude: the flat map is within a metre of it.
    lat1, lon1, lat2, lon2 = -33.92, 18.42, -33.93, 18.44
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    great_circle = 2 * 6_371_008.8 * math.asin(math.sqrt(h))
    assert abs(metres_between(lat1, lon1, lat2, lon2) - great_circle) < 1.0


def test_a_pin_by_a_ward_boundary_reaches_the_wards_across_it():
    gazetteer = default_gazetteer()
    lat, lon = -34.0363, 18.6776
    assert gazetteer.wards_near(lat, lon, 0) == ("94",)
    near = gazetteer.wards_near(lat, lon, 500)
    assert near[0] == "94" and len(near) > 1
    # Further out, more wards; each one is really that close.
    wider = gazetteer.wards_near(lat, lon, 2000)
    assert set(near) < set(wider)
    assert gazetteer.wards_near(-34.9, 17.0, 500) == ()  # in the sea
