"""Point-in-polygon for named areas (wards, informal settlements), in plain Python.

An area is a GeoJSON Polygon or MultiPolygon given as rings of ``[lon, lat]`` pairs. The test is
ray casting with the even-odd rule over every ring of the area, which is right for holes and for
the parts of a MultiPolygon alike (valid GeoJSON parts never overlap).

Speed comes from three prefilters, all built once at load: a grid over the areas' bounding boxes
(``AreaIndex``) so a point is tested only against the areas whose box covers its cell, the area's
bounding box, and a horizontal band index so a point is tested only against the few edges that
cross its latitude band (a Cape Town ward has about 260 edges; a band holds a handful).

Example::

    ward = Area("1", [[[18.0, -34.0], [18.1, -34.0], [18.1, -33.9], [18.0, -34.0]]])
    ward.contains(18.07, -33.97)  # True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

__all__ = [
    "METRES_PER_DEGREE",
    "Area",
    "AreaIndex",
    "Ring",
    "metres_between",
    "rings_of",
    "round_ring",
]

# A ring as GeoJSON gives it: a closed list of [lon, lat] positions.
Ring = Sequence[Sequence[float]]

# About one band per eight edges, capped: enough to make bands short, few enough to stay small.
_EDGES_PER_BAND = 8
_MAX_BANDS = 256
# Cells a side of the grid over a set of areas: a Cape Town ward spans a few cells, a settlement
# usually one, so a cell lists a handful of the 116 wards or 330 settlements.
_GRID_CELLS = 64
# Metres in a degree of latitude (a great circle of the mean Earth radius, 6371.0088 km).
# Distances are measured on a flat map around the point (a degree of longitude is this times the
# cosine of the latitude): over the few kilometres of an alert's radius it strays from the great
# circle by a few metres at most, and the same arithmetic runs in SQL on SQLite and PostgreSQL
# alike (``notifier.broadcast_audience``), so the bot and the database agree on "within 500 m".
METRES_PER_DEGREE = 111_195.08


def metres_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The distance between two points, in metres (on the flat map around the first)."""
    dx = (lon2 - lon1) * math.cos(math.radians(lat1)) * METRES_PER_DEGREE
    dy = (lat2 - lat1) * METRES_PER_DEGREE
    return math.hypot(dx, dy)


def rings_of(geometry: dict[str, object]) -> list[list[list[float]]]:
    """Every ring (outer and holes, of every part) of a GeoJSON Polygon or MultiPolygon."""
    kind = geometry["type"]
    coordinates = geometry["coordinates"]
    if kind == "Polygon":
        return [list(ring) for ring in coordinates]  # type: ignore[attr-defined]
    if kind == "MultiPolygon":
        return [list(ring) for polygon in coordinates for ring in polygon]  # type: ignore[attr-defined]
    raise ValueError(f"expected a Polygon or MultiPolygon, got {kind!r}")


def round_ring(ring: Ring, places: int = 5) -> list[list[float]]:
    """Round a ring to ``places`` decimals (5 is about 1 m) and drop the repeats that leaves."""
    out: list[list[float]] = []
    for position in ring:
        point = [round(float(position[0]), places), round(float(position[1]), places)]
        if not out or out[-1] != point:
            out.append(point)
    if out and out[0] != out[-1]:
        out.append(out[0])
    return out


class Area:
    """A named area that answers "is this point inside?" quickly."""

    __slots__ = (
        "_band_height",
        "_bands",
        "_level",
        "max_x",
        "max_y",
        "min_x",
        "min_y",
        "name",
    )

    def __init__(self, name: str, rings: Sequence[Ring]) -> None:
        self.name = name
        edges: list[tuple[float, float, float, float]] = []
        level: list[float] = []
        for ring in rings:
            for start, end in itertools.pairwise(ring):
                x1, y1, x2, y2 = float(start[0]), float(start[1]), float(end[0]), float(end[1])
                if y1 != y2:
                    edges.append((x1, y1, x2, y2))
                else:
                    # A horizontal edge never crosses a horizontal ray, but a point can be
                    # nearest to it: kept apart, for ``within`` only.
                    level.extend((x1, y1, x2, y2))
        self._level = tuple(level)
        if not edges:
            raise ValueError(f"area {name!r} has no edges")
        xs = [x for e in edges for x in (e[0], e[2])]
        ys = [y for e in edges for y in (e[1], e[3])]
        self.min_x, self.max_x, self.min_y, self.max_y = min(xs), max(xs), min(ys), max(ys)
        count = max(1, min(_MAX_BANDS, len(edges) // _EDGES_PER_BAND))
        self._band_height = (self.max_y - self.min_y) / count or 1.0
        bands: list[list[float]] = [[] for _ in range(count)]
        for x1, y1, x2, y2 in edges:
            low = self._band(min(y1, y2), count)
            high = self._band(max(y1, y2), count)
            for band in range(low, high + 1):
                bands[band].extend((x1, y1, x2, y2))
        self._bands = tuple(tuple(band) for band in bands)

    def _band(self, y: float, count: int) -> int:
        return min(count - 1, max(0, math.floor((y - self.min_y) / self._band_height)))

    def contains(self, x: float, y: float) -> bool:
        """True when the point (lon ``x``, lat ``y``) is inside (even-odd rule)."""
        if not (self.min_x <= x <= self.max_x and self.min_y <= y <= self.max_y):
            return False
        edges = self._bands[self._band(y, len(self._bands))]
        inside = False
        for i in range(0, len(edges), 4):
            y1 = edges[i + 1]
            y2 = edges[i + 3]
            if (y1 > y) != (y2 > y):
                x1 = edges[i]
                if x < x1 + (edges[i + 2] - x1) * (y - y1) / (y2 - y1):
                    inside = not inside
        return inside

    def within(self, x: float, y: float, metres: float) -> bool:
        """True when the point (lon ``x``, lat ``y``) is inside, or at most ``metres`` from the
        boundary (every edge, holes' too: a point in a hole is that far from the area)."""
        if self.contains(x, y):
            return True
        scale_x = math.cos(math.radians(y)) * METRES_PER_DEGREE
        margin_x, margin_y = metres / scale_x, metres / METRES_PER_DEGREE
        if not (
            self.min_x - margin_x <= x <= self.max_x + margin_x
            and self.min_y - margin_y <= y <= self.max_y + margin_y
        ):
            return False
        limit = metres * metres
        count = len(self._bands)
        # Only the bands within reach hold edges that can be that close (an edge in several
        # bands is measured more than once, which is harmless).
        reach = range(self._band(y - margin_y, count), self._band(y + margin_y, count) + 1)
        for edges in itertools.chain((self._bands[band] for band in reach), (self._level,)):
            for i in range(0, len(edges), 4):
                # The edge on the flat map around the point, the point at the origin.
                ax = (edges[i] - x) * scale_x
                ay = (edges[i + 1] - y) * METRES_PER_DEGREE
                bx = (edges[i + 2] - x) * scale_x
                by = (edges[i + 3] - y) * METRES_PER_DEGREE
                if _squared_distance_to_segment(ax, ay, bx, by) <= limit:
                    return True
        return False

    @property
    def bbox_area(self) -> float:
        """The bounding box's area in square degrees: a cheap "which is smaller" measure."""
        return (self.max_x - self.min_x) * (self.max_y - self.min_y)


def _squared_distance_to_segment(ax: float, ay: float, bx: float, by: float) -> float:
    """The squared distance from the origin to the segment from a to b."""
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
    px, py = ax + t * dx, ay + t * dy
    return px * px + py * py


class AreaIndex:
    """Areas in a given order, found by point: the first one (in that order) containing it.

    Equivalent to testing every area in order, but a point is tested only against the areas
    whose bounding box overlaps its cell of a grid laid over all the boxes; a cell keeps its
    areas in the given order, so the first found is the same.

    Example::

        wards = AreaIndex([Area("1", rings_1), Area("2", rings_2)])
        wards.first_containing(18.07, -33.97)  # Area "1" (or None outside every ward)
    """

    __slots__ = ("_cell_h", "_cell_w", "_cells", "areas", "max_x", "max_y", "min_x", "min_y")

    def __init__(self, areas: Sequence[Area]) -> None:
        self.areas = tuple(areas)
        if not areas:
            self.min_x = self.min_y = math.inf
            self.max_x = self.max_y = -math.inf
            self._cell_w = self._cell_h = 1.0
            self._cells: tuple[tuple[Area, ...], ...] = ()
            return
        self.min_x = min(a.min_x for a in areas)
        self.max_x = max(a.max_x for a in areas)
        self.min_y = min(a.min_y for a in areas)
        self.max_y = max(a.max_y for a in areas)
        self._cell_w = (self.max_x - self.min_x) / _GRID_CELLS or 1.0
        self._cell_h = (self.max_y - self.min_y) / _GRID_CELLS or 1.0
        cells: list[list[Area]] = [[] for _ in range(_GRID_CELLS * _GRID_CELLS)]
        for area in areas:
            # Cells are found with the same arithmetic as a point's, which is monotonic, so every
            # point inside the box falls in one of the cells listed here.
            for row in range(self._row(area.min_y), self._row(area.max_y) + 1):
                for column in range(self._column(area.min_x), self._column(area.max_x) + 1):
                    cells[row * _GRID_CELLS + column].append(area)
        self._cells = tuple(tuple(cell) for cell in cells)

    def _column(self, x: float) -> int:
        return min(_GRID_CELLS - 1, max(0, math.floor((x - self.min_x) / self._cell_w)))

    def _row(self, y: float) -> int:
        return min(_GRID_CELLS - 1, max(0, math.floor((y - self.min_y) / self._cell_h)))

    def first_containing(self, x: float, y: float) -> Area | None:
        """The first area containing the point (lon ``x``, lat ``y``), or None."""
        # Outside every box (NaN included, which compares false) no area can contain it.
        if not (self.min_x <= x <= self.max_x and self.min_y <= y <= self.max_y):
            return None
        for area in self._cells[self._row(y) * _GRID_CELLS + self._column(x)]:
            if area.contains(x, y):
                return area
        return None

    def all_containing(self, x: float, y: float) -> list[Area]:
        """Every area containing the point, in the index's order (areas that overlap, such as
        suburb outlines drawn apart, may both hold it)."""
        if not (self.min_x <= x <= self.max_x and self.min_y <= y <= self.max_y):
            return []
        cell = self._cells[self._row(y) * _GRID_CELLS + self._column(x)]
        return [area for area in cell if area.contains(x, y)]

    def all_within(self, x: float, y: float, metres: float) -> list[Area]:
        """Every area containing the point or at most ``metres`` from it, in the index's order."""
        return [area for area in self.areas if area.within(x, y, metres)]
