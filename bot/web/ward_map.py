"""The city's wards as one SVG: projected, simplified and written as paths, no map tiles.

The outlines come from the gazetteer (``Gazetteer.ward_outlines``), in degrees. They are
projected equirectangularly around the city's middle latitude (a city is small enough for
that to keep shapes true), flipped so north is up, and simplified with Douglas-Peucker to a
fraction of a pixel of the drawing's width: the packaged wards have about 30,000 points, far
more than a map a few hundred pixels wide can show. Every ward is simplified on its own, so
neighbours can differ along a shared border by at most the tolerance, well under a pixel.

Each ward is ``<path data-ward="94" d="..."><title>Ward 94</title></path>``: the dashboard
and the console colour or mark a ward by its ``data-ward`` and read its title aloud. Rings
are drawn with the even-odd rule, which is right for holes as for the gazetteer.

Example::

    svg = ward_map_svg(default_gazetteer().ward_outlines)
    svg.startswith("<svg")   # True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["VIEW_WIDTH", "project", "simplify_ring", "ward_map_svg", "ward_sort_key"]

Point = tuple[float, float]

# The drawing's width in SVG units; its height follows the city's shape.
VIEW_WIDTH = 1000.0
# Douglas-Peucker tolerance in SVG units: half a unit, invisible at any size a page shows.
_TOLERANCE = 0.5


def ward_sort_key(ward: str) -> tuple[int, str]:
    """Wards in their numeric order ("2" before "10"), names that are not numbers after."""
    return (int(ward), "") if ward.isdigit() else (10**9, ward)


def project(
    outlines: Mapping[str, Sequence[Sequence[Point]]], width: float = VIEW_WIDTH
) -> tuple[dict[str, list[list[Point]]], float]:
    """The outlines in SVG units (x right, y down), and the drawing's height."""
    points = [p for rings in outlines.values() for ring in rings for p in ring]
    if not points:
        return {}, 0.0
    min_lon = min(p[0] for p in points)
    max_lon = max(p[0] for p in points)
    min_lat = min(p[1] for p in points)
    max_lat = max(p[1] for p in points)
    # A degree of longitude is shorter than one of latitude by cos(latitude).
    x_scale = math.cos(math.radians((min_lat + max_lat) / 2))
    span = (max_lon - min_lon) * x_scale or 1.0
    unit = width / span
    projected = {
        ward: [
            [((lon - min_lon) * x_scale * unit, (max_lat - lat) * unit) for lon, lat in ring]
            for ring in rings
        ]
        for ward, rings in outlines.items()
    }
    return projected, (max_lat - min_lat) * unit


def simplify_ring(ring: Sequence[Point], tolerance: float = _TOLERANCE) -> list[Point]:
    """Douglas-Peucker over a closed ring: the points that keep it within ``tolerance``.

    Returns the ring unchanged when simplifying would leave fewer than 3 corners (a ring that
    small is a speck, and a ward drawn as nothing would vanish from the map).
    """
    if len(ring) < 5:
        return list(ring)
    # A closed ring has no natural ends: split it at its first point and the point farthest
    # from it, and simplify the two halves as open lines.
    first = ring[0]
    far = max(range(len(ring)), key=lambda i: _distance2(ring[i], first))
    keep = [False] * len(ring)
    keep[0] = keep[far] = keep[-1] = True
    tolerance2 = tolerance * tolerance
    stack = [(0, far), (far, len(ring) - 1)]
    while stack:  # iterative, so a ring of thousands of points cannot exhaust the call stack
        start, end = stack.pop()
        if end - start < 2:
            continue
        worst, worst_d2 = start, -1.0
        a, b = ring[start], ring[end]
        for i in range(start + 1, end):
            d2 = _segment_distance2(ring[i], a, b)
            if d2 > worst_d2:
                worst, worst_d2 = i, d2
        if worst_d2 > tolerance2:
            keep[worst] = True
            stack.append((start, worst))
            stack.append((worst, end))
    kept = [p for p, k in zip(ring, keep, strict=True) if k]
    return kept if len(kept) >= 4 else list(ring)


def _distance2(p: Point, q: Point) -> float:
    return (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2


def _segment_distance2(p: Point, a: Point, b: Point) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    if length2 == 0:
        return _distance2(p, a)
    t = max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    return _distance2(p, (a[0] + t * dx, a[1] + t * dy))


def _path_data(rings: Sequence[Sequence[Point]]) -> str:
    parts = []
    for ring in rings:
        # One decimal: a tenth of a unit, a thousandth of the drawing's width.
        coordinates = " ".join(f"{x:.1f} {y:.1f}" for x, y in ring[:-1])
        parts.append(f"M{coordinates}Z")
    return "".join(parts)


def ward_map_svg(
    outlines: Mapping[str, Sequence[Sequence[Point]]],
    *,
    title: str = "The city's wards",
    width: float = VIEW_WIDTH,
    tolerance: float = _TOLERANCE,
) -> str:
    """One standalone SVG document with a path per ward, in ward order."""
    projected, height = project(outlines, width)
    paths = []
    for ward in sorted(projected, key=ward_sort_key):
        rings = [simplify_ring(ring, tolerance) for ring in projected[ward]]
        name = escape(ward)
        paths.append(
            f'<path data-ward="{name}" d="{_path_data(rings)}"><title>Ward {name}</title></path>'
        )
    body = "\n".join(paths)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {math.ceil(width)} {math.ceil(height)}"'
        f' role="img" aria-label="{escape(title)}" fill-rule="evenodd">\n'
        f"<title>{escape(title)}</title>\n{body}\n</svg>\n"
    )
