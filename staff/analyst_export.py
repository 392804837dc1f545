"""The analysts' raw export: every request with its reference, exact point and department.

More than the public rows (``staff.open_data_rows``): the resident's reference (to look a request
up in the console), the pin as stored (not snapped), the place's precision and the channel, and
the department that answers the service, for the drill-down from department to service. Still no
personal data and no free text: no answers, descriptions, typed addresses or phone numbers.
Limited to the caller's wards; the route audits every export.

Example::

    async for row in export_rows(sessionmaker, ExportFilter(department="Energy"), zone=zone):
        row["reference"], row["department"]      # "CT-7KQ2PX", "Energy"
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from staff.analytics import DEPARTMENTS, OTHER_DEPARTMENT, department_of
from staff.open_data_rows import RowFilter, request_query
from storage.models import Submission
from storage.replica import ReadSessions

__all__ = ["EXPORT_COLUMNS", "ExportFilter", "export_rows"]

EXPORT_COLUMNS = (
    "reference",
    "department",
    "service",
    "ward",
    "area_type",
    "precision",
    "channel",
    "received",
    "acknowledged",
    "closed",
    "status",
    "lat",
    "lon",
    "demo",
)


@dataclass(frozen=True, slots=True)
class ExportFilter:
    rows: RowFilter = field(default_factory=RowFilter)
    department: str | None = None
    # The caller's wards (None: the whole city).
    wards: Collection[str] | None = None


def _stamp(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


async def export_rows(
    sessions: ReadSessions, where: ExportFilter, *, zone: ZoneInfo
) -> AsyncIterator[dict[str, Any]]:
    s = Submission
    query = request_query(where.rows, zone).add_columns(s.reference, s.precision, s.channel)
    if where.department == OTHER_DEPARTMENT:
        known = [c for codes in DEPARTMENTS.values() for c in codes]
        query = query.where(s.service_code.not_in(known))
    elif where.department is not None:
        query = query.where(s.service_code.in_(DEPARTMENTS.get(where.department, ())))
    if where.wards is not None:
        query = query.where(s.ward.in_(sorted(where.wards)))
    async with sessions() as session:
        result = await session.stream(query.execution_options(yield_per=2000))
        async for row in result:
            (_, service, ward, _, area_type, received, acked, closed, filing, city) = row[:10]
            lat, lon, demo, reference, precision, channel = row[10:]
            status = (
                city if city is not None else ("rejected" if filing == "rejected" else "received")
            )
            yield {
                "reference": reference,
                "department": department_of(service),
                "service": service,
                "ward": ward or "unknown",
                "area_type": area_type or "unknown",
                "precision": precision,
                "channel": channel,
                "received": _stamp(received),
                "acknowledged": _stamp(acked),
                "closed": _stamp(closed),
                "status": status
                if status in ("received", "open", "closed", "rejected")
                else "open",
                "lat": lat,
                "lon": lon,
                "demo": bool(demo),
            }
