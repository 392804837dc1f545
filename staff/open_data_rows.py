"""The public, per-request open data: one row per request, with nothing that names a person.

A row says what (the service), where (ward, suburb, area type, and a 250 m grid cell's centre),
when (received, acknowledged, closed) and how it stands (status), under an opaque public id: a
keyed hash of the row's id, so it is stable from one download to the next but leads back to
neither the resident's reference nor the row. No free text is published (descriptions and typed
addresses carry names), nor the channel, language or anything of the resident.

Coordinates are snapped to the centre of a 250 m cell, and published only where the cell holds at
least ``MIN_CELL`` requests (``open_data_cells``, counted when the rollup is refreshed): a
request alone in its cell is published without them, so a pin on a house does not point at it.

Example::

    grid = Grid(reference_latitude=-33.9)
    async for row in stream_rows(sessionmaker, grid, key, RowFilter(ward="94")):
        row["id"], row["lat"], row["lon"]        # "9f2c01d3a4b5c6d7", -33.99887, 18.66451
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Float, Integer, Select, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Submission, TrackedRequest, open_data_cells
from storage.replica import ReadSessions

__all__ = [
    "COLUMNS",
    "GRID_METRES",
    "MIN_CELL",
    "Grid",
    "RowFilter",
    "public_id",
    "public_id_key",
    "published_cells",
    "request_query",
    "stream_rows",
]

GRID_METRES = 250.0
MIN_CELL = 5
# Metres in a degree of latitude (and of longitude at the equator).
_METRES_PER_DEGREE = 111_320.0
COLUMNS = (
    "id",
    "service",
    "ward",
    "suburb",
    "area_type",
    "received",
    "acknowledged",
    "closed",
    "status",
    "lat",
    "lon",
    "demo",
)
# Task D's ``submissions.suburb`` (the gazetteer's suburb of the place), published once the
# column exists; until then every suburb is "unknown".
_SUBURB: Any = getattr(Submission, "suburb", None)
# The filer's states before the city has the request; after, the city's own status.
_BEFORE_THE_CITY = {"rejected": "rejected"}
_CITY_STATUSES = frozenset({"open", "closed"})


@dataclass(frozen=True, slots=True)
class Grid:
    """A grid of ``GRID_METRES`` cells. A city is small enough for one width of a degree of
    longitude (at ``reference_latitude``, the city's) to hold across it."""

    reference_latitude: float

    @property
    def lat_step(self) -> float:
        return GRID_METRES / _METRES_PER_DEGREE

    @property
    def lon_step(self) -> float:
        return self.lat_step / math.cos(math.radians(self.reference_latitude))

    def cell(self, lat: float, lon: float) -> tuple[int, int]:
        # Shifted to be positive: SQLite's CAST truncates, which is then a floor (cell_sql).
        return math.floor((lat + 90.0) / self.lat_step), math.floor((lon + 180.0) / self.lon_step)

    def centre(self, cell: tuple[int, int]) -> tuple[float, float]:
        row, col = cell
        return (
            round((row + 0.5) * self.lat_step - 90.0, 5),
            round((col + 0.5) * self.lon_step - 180.0, 5),
        )

    def cell_sql(self, dialect: str) -> tuple[ColumnElement[int], ColumnElement[int]]:
        """``cell`` as SQL over ``submissions.lat``/``lon``, the same floating-point steps."""
        lat = (Submission.lat + literal(90.0, Float)) / literal(self.lat_step, Float)
        lon = (Submission.lon + literal(180.0, Float)) / literal(self.lon_step, Float)
        if dialect == "sqlite":
            return cast(lat, Integer), cast(lon, Integer)
        return cast(func.floor(lat), Integer), cast(func.floor(lon), Integer)


def public_id_key(secret: str) -> bytes:
    """The key of the public ids, derived from the deployment's secret."""
    return hmac.new(secret.encode(), b"citybot open data public id", hashlib.sha256).digest()


def public_id(key: bytes, row_id: int) -> str:
    return hmac.new(key, str(row_id).encode(), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class RowFilter:
    # Received on these days (inclusive) in the city's time zone; None: no bound.
    start: date | None = None
    end: date | None = None
    service: str | None = None
    ward: str | None = None
    area_type: str | None = None


def request_query(where: RowFilter, zone: ZoneInfo) -> Select[Any]:
    """The columns a row is made of, for the requests ``where`` selects, oldest first."""
    s, t = Submission, TrackedRequest
    query = select(
        s.id,
        s.service_code,
        s.ward,
        _SUBURB if _SUBURB is not None else literal(None),
        s.area_type,
        s.created_at,
        t.acknowledged_at,
        t.closed_at,
        s.status,
        t.status,
        s.lat,
        s.lon,
        s.demo,
    ).outerjoin(t, t.submission_id == s.id)
    if where.start is not None:
        query = query.where(s.created_at >= datetime.combine(where.start, time(), tzinfo=zone))
    if where.end is not None:
        after = datetime.combine(where.end + timedelta(days=1), time(), tzinfo=zone)
        query = query.where(s.created_at < after)
    if where.service is not None:
        query = query.where(s.service_code == where.service)
    if where.ward is not None:
        query = (
            query.where(s.ward == where.ward)
            if where.ward != "unknown"
            else query.where(s.ward.is_(None))
        )
    if where.area_type is not None:
        query = (
            query.where(s.area_type == where.area_type)
            if where.area_type != "unknown"
            else query.where((s.area_type.is_(None)) | (s.area_type == "unknown"))
        )
    return query.order_by(s.id)


def _stamp(value: datetime | None) -> str | None:
    # To the minute: the second a report was made says nothing more about the service.
    if value is None:
        return None
    return value.astimezone(UTC).replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%MZ")


def _status(filing: str, city: str | None, closed: datetime | None) -> str:
    if city is None:
        return _BEFORE_THE_CITY.get(filing, "received")
    if city in _CITY_STATUSES:
        return city
    return "closed" if closed is not None else "open"  # never the city's own words


async def published_cells(session: AsyncSession) -> set[tuple[int, int]]:
    c = open_data_cells.c
    rows = await session.execute(select(c.cell_row, c.cell_col).where(c.requests >= MIN_CELL))
    return {(int(r), int(col)) for r, col in rows}


async def stream_rows(
    sessions: ReadSessions,
    grid: Grid,
    key: bytes,
    where: RowFilter,
    *,
    zone: ZoneInfo,
    after: int | None = None,
    limit: int | None = None,
) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """(row id, public row) for each request ``where`` selects, oldest first, after the row id
    ``after``; ``limit`` rows at most. Read in batches from a server-side cursor, so a download
    of every request holds one batch in memory, not the table."""
    query = request_query(where, zone)
    if after is not None:
        query = query.where(Submission.id > after)
    if limit is not None:
        query = query.limit(limit)
    async with sessions() as session:
        cells = await published_cells(session)
        result = await session.stream(query.execution_options(yield_per=2000))
        async for row in result:
            (row_id, service, ward, suburb, area_type, received, acked, closed) = row[:8]
            filing, city, lat, lon, demo = row[8:]
            point: tuple[float | None, float | None] = (None, None)
            if lat is not None and lon is not None:
                cell = grid.cell(lat, lon)
                if cell in cells:
                    point = grid.centre(cell)
            yield (
                row_id,
                {
                    "id": public_id(key, row_id),
                    "service": service,
                    "ward": ward or "unknown",
                    "suburb": suburb or "unknown",
                    "area_type": area_type or "unknown",
                    "received": _stamp(received),
                    "acknowledged": _stamp(acked),
                    "closed": _stamp(closed),
                    "status": _status(filing, city, closed),
                    "lat": point[0],
                    "lon": point[1],
                    "demo": bool(demo),
                },
            )
