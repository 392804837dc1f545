"""GET /dashboard/wards.svg and the drawing behind it (bot.web.ward_map): every ward of the
gazetteer is a titled path, the document is valid XML of a bounded size, and simplifying kept
each ward's shape (its area within the tolerance times its perimeter)."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree

from aiohttp.test_utils import TestClient

from bot.web.dashboard import WARDS_SVG_PATH
from bot.web.ward_map import project, simplify_ring, ward_map_svg, ward_sort_key
from forms_runtime.gazetteer import default_gazetteer

SVG = "{http://www.w3.org/2000/svg}"
# The packaged wards are about 61 KB drawn; well above that means simplifying stopped working.
MAX_BYTES = 100_000


def _area(ring: Sequence[tuple[float, float]]) -> float:
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring))) / 2


def _perimeter(ring: Sequence[tuple[float, float]]) -> float:
    return sum(math.dist(p, q) for p, q in itertools.pairwise(ring))


def _path_rings(d: str) -> list[list[tuple[float, float]]]:
    rings = []
    for part in re.findall(r"M([^MZ]+)Z", d):
        numbers = [float(n) for n in part.split()]
        ring = list(zip(numbers[::2], numbers[1::2], strict=True))
        rings.append([*ring, ring[0]])
    return rings


def test_every_ward_is_a_titled_path_in_valid_xml_of_bounded_size() -> None:
    outlines = default_gazetteer().ward_outlines
    svg = ward_map_svg(outlines, title="The wards of Cape Town")
    assert len(svg.encode()) < MAX_BYTES
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    paths = root.findall(f"{SVG}path")
    wards = [p.get("data-ward") for p in paths]
    assert sorted(wards, key=lambda w: ward_sort_key(w or "")) == wards
    assert set(wards) == set(outlines) and len(wards) == len(outlines) == 116
    for path in paths:
        title = path.find(f"{SVG}title")
        assert title is not None and title.text == f"Ward {path.get('data-ward')}"
    _, _, width, height = (float(v) for v in (root.get("viewBox") or "").split())
    for path in paths:
        for ring in _path_rings(path.get("d") or ""):
            assert all(-0.1 <= x <= width + 0.1 and -0.1 <= y <= height + 0.1 for x, y in ring)


def test_simplifying_keeps_each_wards_area() -> None:
    outlines = default_gazetteer().ward_outlines
    projected, _ = project(outlines)
    root = ElementTree.fromstring(ward_map_svg(outlines))
    drawn = {p.get("data-ward"): p.get("d") or "" for p in root.findall(f"{SVG}path")}
    points_before = points_after = 0
    for ward, rings in projected.items():
        before = sum(_area(r) for r in rings)
        after_rings = _path_rings(drawn[ward])
        after = sum(_area(r) for r in after_rings)
        # Every point stays within half a unit of the outline, so the area can move by at most
        # half a unit times the perimeter (and the small rounding to a tenth).
        perimeter = sum(_perimeter(r) for r in rings)
        assert abs(after - before) <= 0.5 * perimeter, ward
        assert abs(after - before) <= 0.03 * before, ward
        points_before += sum(len(r) for r in rings)
        points_after += sum(len(r) for r in after_rings)
    assert points_after < points_before / 3  # simplifying did simplify


def test_a_ring_too_small_to_simplify_is_kept_whole() -> None:
    speck = [(0.0, 0.0), (0.1, 0.0), (0.1, 0.1), (0.05, 0.12), (0.0, 0.1), (0.0, 0.0)]
    assert simplify_ring(speck, tolerance=1.0) == speck
    square = [(0.0, 0.0), (5.0, 0.01), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0), (0.0, 0.0)]
    assert simplify_ring(square, tolerance=0.5) == [
        (0.0, 0.0),
        (10.0, 0.0),
        (10.0, 10.0),
        (0.0, 10.0),
        (0.0, 0.0),
    ]


async def test_served_as_svg_with_a_long_cache_and_an_etag(client: TestClient[Any, Any]) -> None:
    response = await client.get(WARDS_SVG_PATH)
    assert response.status == 200
    assert response.content_type == "image/svg+xml"
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    body = await response.read()
    assert body.count(b"<path data-ward=") == 116
    again = await client.get(WARDS_SVG_PATH)
    assert await again.read() == body  # made once per process
    etag = response.headers["ETag"]
    assert again.headers["ETag"] == etag
    unchanged = await client.get(WARDS_SVG_PATH, headers={"If-None-Match": etag})
    assert unchanged.status == 304
    assert await unchanged.read() == b""
