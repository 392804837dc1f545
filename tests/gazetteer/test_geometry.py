import pytest

from forms_runtime.gazetteer.geometry import Area, rings_of, round_ring

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
