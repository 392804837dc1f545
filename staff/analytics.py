"""Service performance as the public sees it: who waits how long, by area type, ward or service.

Figures are read from the rollup (``staff.analytics_rollup`` keeps it): per week or month,
grouped by area type, ward or service, the number of requests, the median and 90th percentile
hours to acknowledge and to close, the share closed within the service's target, and the
disparity ratio (informal settlements' median time to close over formal areas') with its 95%
bootstrap interval. A group of fewer than ``MIN_GROUP`` requests is listed as suppressed, with
no figures; so is a figure whose own ground (requests acknowledged, requests closed) is smaller.

Requests whose place is not known are counted under "unknown", never dropped. Periods are
selected by their first day (``start``/``end`` inclusive), in the city's time zone.

Example::

    async with sessionmaker() as session:
        answer = await performance(session, PerformanceQuery(group="area_type", period="month"))
    answer.rows[0].close_hours_p50, answer.disparity[0].ratio
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from staff.hour_histograms import percentiles, ratio_interval
from storage.models import Submission, open_data_disparity, open_data_rollup
from storage.models.open_data import ALL, HISTOGRAM_BUCKETS

__all__ = [
    "AREA_TYPES",
    "DEFAULT_TARGET_HOURS",
    "DEPARTMENTS",
    "GROUPS",
    "MIN_GROUP",
    "OTHER_DEPARTMENT",
    "PERIODS",
    "SERVICE_TARGET_HOURS",
    "SPECIAL_MIN_GROUP",
    "DisparityRow",
    "Performance",
    "PerformanceQuery",
    "PerformanceRow",
    "department_of",
    "next_period",
    "performance",
    "period_range",
    "period_start",
    "published",
    "target_hours",
]

Group = Literal["area_type", "ward", "service", "department"]
Period = Literal["week", "month"]
GROUPS: tuple[str, ...] = ("area_type", "ward", "service", "department")
PERIODS: tuple[str, ...] = ("week", "month")
# The gazetteer's area types, and "unknown" for a place it cannot tell (or no place).
AREA_TYPES = ("informal_settlement", "mixed", "formal", "unknown")
INFORMAL, FORMAL = "informal_settlement", "formal"
# Fewer requests than this in a group and its figures are not published.
MIN_GROUP = 5
# The same, for groups drawn from special personal information (POPIA s26: disability).
SPECIAL_MIN_GROUP = 10


def published(count: int, k: int = MIN_GROUP) -> int | None:
    """``count`` as the public may see it: ``None`` (suppressed) below ``k``, zero excepted
    (nobody in a group identifies nobody)."""
    return count if count == 0 or count >= k else None


# Hours within which each service should be closed: the city's published service standards
# where it has them, else the default (a week). docs/open-data.md carries this table.
SERVICE_TARGET_HOURS: Mapping[str, float] = {
    "WATER-NO-SUPPLY": 24,
    "ELEC-OUTAGE": 24,
    "WATER-LEAK": 48,
    "SEWER-BLOCKAGE": 48,
    "WASTE-REFUSE-MISSED": 72,
    "GENERAL-ENQUIRY": 120,
    "ELEC-STREETLIGHT": 168,
    "ROADS-POTHOLE": 168,
    "WASTE-DUMPING": 336,
}
DEFAULT_TARGET_HOURS = 168.0

# The city department that answers each service (for the analysts' drill-down: department, then
# its services); a service not listed is "Other".
DEPARTMENTS: Mapping[str, tuple[str, ...]] = {
    "Water and Sanitation": ("WATER-NO-SUPPLY", "WATER-LEAK", "SEWER-BLOCKAGE"),
    "Energy": ("ELEC-OUTAGE", "ELEC-STREETLIGHT"),
    "Roads and Infrastructure": ("ROADS-POTHOLE",),
    "Urban Waste Management": ("WASTE-REFUSE-MISSED", "WASTE-DUMPING"),
    "Customer Relations": ("GENERAL-ENQUIRY",),
}
OTHER_DEPARTMENT = "Other"


def department_of(service_code: str) -> str:
    return next(
        (name for name, codes in DEPARTMENTS.items() if service_code in codes), OTHER_DEPARTMENT
    )


def _in_department(column: Any, department: str) -> Any:
    if department == OTHER_DEPARTMENT:
        # ALL too: the sums over every service are no department's.
        return column.not_in([ALL, *(c for codes in DEPARTMENTS.values() for c in codes)])
    return column.in_(DEPARTMENTS.get(department, ()))


def target_hours(service_code: str) -> float:
    return float(SERVICE_TARGET_HOURS.get(service_code, DEFAULT_TARGET_HOURS))


# -- periods (in the city's time zone) -----------------------------------------------------


def period_start(day: date, period: str) -> date:
    """The first day of the week (a Monday) or month holding ``day``."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(start: date, period: str) -> date:
    if period == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_range(start: date, period: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The period beginning on ``start`` as aware datetimes [from, to)."""
    end = next_period(start, period)
    return (
        datetime.combine(start, time(), tzinfo=zone),
        datetime.combine(end, time(), tzinfo=zone),
    )


# -- the answer ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PerformanceQuery:
    group: Group = "area_type"
    period: Period = "month"
    # Periods whose first day is within [start, end]; None: no bound.
    start: date | None = None
    end: date | None = None
    service: str | None = None
    department: str | None = None


@dataclass(frozen=True, slots=True)
class PerformanceRow:
    period_start: date
    key: str
    count: int | None
    suppressed: bool
    ack_hours_p50: float | None
    ack_hours_p90: float | None
    close_hours_p50: float | None
    close_hours_p90: float | None
    closed_within_target: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "period_start": self.period_start.isoformat(),
            "key": self.key,
            "count": self.count,
            "suppressed": self.suppressed,
            "ack_hours_p50": self.ack_hours_p50,
            "ack_hours_p90": self.ack_hours_p90,
            "close_hours_p50": self.close_hours_p50,
            "close_hours_p90": self.close_hours_p90,
            "closed_within_target": self.closed_within_target,
        }


@dataclass(frozen=True, slots=True)
class DisparityRow:
    period_start: date
    key: str
    # Closed requests on each side (None when fewer than MIN_GROUP: suppressed).
    informal_count: int | None
    formal_count: int | None
    suppressed: bool
    ratio: float | None
    ci_low: float | None
    ci_high: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "period_start": self.period_start.isoformat(),
            "key": self.key,
            "ratio": self.ratio,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "informal_count": self.informal_count,
            "formal_count": self.formal_count,
            "suppressed": self.suppressed,
        }


@dataclass(frozen=True, slots=True)
class Performance:
    group: str
    period: str
    rows: list[PerformanceRow]
    disparity: list[DisparityRow]
    # Whether synthetic requests (``citybot demo seed``) are among those counted.
    demo: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "period": self.period,
            "demo": self.demo,
            "rows": [r.as_dict() for r in self.rows],
            "disparity": [d.as_dict() for d in self.disparity],
        }


_KEY_COLUMN: dict[str, Any] = {
    "area_type": open_data_rollup.c.area_type,
    "ward": open_data_rollup.c.ward,
    "service": open_data_rollup.c.service_code,
    "department": case(
        {code: name for name, codes in DEPARTMENTS.items() for code in codes},
        value=open_data_rollup.c.service_code,
        else_=OTHER_DEPARTMENT,
    ),
}
_COUNTS = ("requests", "acknowledged", "closed", "due", "closed_within_target")


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _figures(counts: list[int], base: int) -> tuple[float | None, float | None]:
    """The median and 90th percentile hours, when ``base`` (requests counted) is big enough."""
    if base < MIN_GROUP:
        return None, None
    p50, p90 = percentiles(counts, (0.5, 0.9))
    return _hours(p50), _hours(p90)


def _row(start: date, key: str, sums: list[int]) -> PerformanceRow:
    requests, acknowledged, closed, due, within = sums[:5]
    if requests < MIN_GROUP:
        return PerformanceRow(start, key, None, True, None, None, None, None, None)
    ack = _figures(sums[5 : 5 + HISTOGRAM_BUCKETS], acknowledged)
    close = _figures(sums[5 + HISTOGRAM_BUCKETS :], closed)
    return PerformanceRow(
        period_start=start,
        key=key,
        count=requests,
        suppressed=False,
        ack_hours_p50=ack[0],
        ack_hours_p90=ack[1],
        close_hours_p50=close[0],
        close_hours_p90=close[1],
        closed_within_target=round(within / due, 3) if due >= MIN_GROUP else None,
    )


def _bounded(query: Select[Any], column: Any, q: PerformanceQuery) -> Select[Any]:
    if q.start is not None:
        query = query.where(column >= q.start)
    if q.end is not None:
        query = query.where(column <= q.end)
    return query


async def _rows(session: AsyncSession, q: PerformanceQuery) -> list[PerformanceRow]:
    r = open_data_rollup.c
    key = _KEY_COLUMN[q.group]
    sums = [func.sum(r[name]) for name in _COUNTS]
    sums += [func.sum(r[f"ack_{i}"]) for i in range(HISTOGRAM_BUCKETS)]
    sums += [func.sum(r[f"close_{i}"]) for i in range(HISTOGRAM_BUCKETS)]
    query = select(r.period_start, key, *sums).where(r.period == q.period)
    query = _bounded(query, r.period_start, q)
    # The rollup also holds sums over every ward and every service (ALL): read the fewest rows.
    by_ward = q.group == "ward"
    query = query.where(r.ward != ALL if by_ward else r.ward == ALL)
    if q.service is not None:
        query = query.where(r.service_code == q.service)
    elif q.department is not None:
        query = query.where(_in_department(r.service_code, q.department))
    elif q.group in ("service", "department"):
        query = query.where(r.service_code != ALL)
    else:
        query = query.where(r.service_code == ALL)
    query = query.group_by(r.period_start, key).order_by(r.period_start, key)
    return [
        _row(row[0], str(row[1]), [int(v or 0) for v in row[2:]])
        for row in await session.execute(query)
    ]


async def _department_disparity(
    session: AsyncSession, q: PerformanceQuery, *, resamples: int = 1000
) -> list[DisparityRow]:
    """Departments are not in the stored disparities: computed here from the rollup's
    histograms (a few departments, so a few bootstraps a period)."""
    r = open_data_rollup.c
    key = _KEY_COLUMN["department"]
    sums = [func.sum(r[f"close_{i}"]) for i in range(HISTOGRAM_BUCKETS)]
    query = select(r.period_start, key, r.area_type, *sums).where(
        r.period == q.period, r.area_type.in_((INFORMAL, FORMAL))
    )
    query = _bounded(query, r.period_start, q).where(r.ward == ALL, r.service_code != ALL)
    if q.service is not None:
        query = query.where(r.service_code == q.service)
    if q.department is not None:
        query = query.where(_in_department(r.service_code, q.department))
    sides: dict[tuple[date, str], dict[str, list[int]]] = {}
    for row in await session.execute(query.group_by(r.period_start, key, r.area_type)):
        sides.setdefault((row[0], str(row[1])), {})[row[2]] = [int(v or 0) for v in row[3:]]
    out = []
    for (start, name), found in sorted(sides.items()):
        informal, formal = found.get(INFORMAL), found.get(FORMAL)
        if informal is None or formal is None:
            continue
        n_informal, n_formal = sum(informal), sum(formal)
        if not n_informal or not n_formal:
            continue
        interval = None
        if n_informal >= MIN_GROUP and n_formal >= MIN_GROUP:
            interval = ratio_interval(
                informal, formal, seed=f"department:{q.period}:{start}:{name}", resamples=resamples
            )
        out.append(
            DisparityRow(
                period_start=start,
                key=name if q.group == "department" else "all",
                informal_count=n_informal if n_informal >= MIN_GROUP else None,
                formal_count=n_formal if n_formal >= MIN_GROUP else None,
                suppressed=interval is None,
                ratio=None if interval is None else round(interval[0], 2),
                ci_low=None if interval is None else round(interval[1], 2),
                ci_high=None if interval is None else round(interval[2], 2),
            )
        )
    return out


async def _disparity(session: AsyncSession, q: PerformanceQuery) -> list[DisparityRow]:
    if q.group == "department" or (q.department is not None and q.group == "area_type"):
        return await _department_disparity(session, q)
    if q.department is not None and q.group == "ward":
        return []  # wards within a department: not kept (the service's are: service=...)
    d = open_data_disparity.c
    query = select(open_data_disparity).where(d.period == q.period)
    query = _bounded(query, d.period_start, q)
    service = q.service if q.service is not None else ALL
    if q.group == "area_type":
        query = query.where(d.service_code == service, d.ward == ALL)
    elif q.group == "service":
        query = query.where(d.ward == ALL, d.service_code != ALL)
        if q.service is not None:
            query = query.where(d.service_code == q.service)
        if q.department is not None:
            query = query.where(_in_department(d.service_code, q.department))
    else:
        query = query.where(d.service_code == service, d.ward != ALL)
    key_column = {"area_type": None, "service": "service_code", "ward": "ward"}[q.group]
    out = []
    for row in await session.execute(query.order_by(d.period_start, d.service_code, d.ward)):
        suppressed = row.ratio is None
        out.append(
            DisparityRow(
                period_start=row.period_start,
                key="all" if key_column is None else str(getattr(row, key_column)),
                informal_count=row.informal_count if row.informal_count >= MIN_GROUP else None,
                formal_count=row.formal_count if row.formal_count >= MIN_GROUP else None,
                suppressed=suppressed,
                ratio=None if suppressed else round(row.ratio, 2),
                ci_low=None if suppressed else round(row.ci_low, 2),
                ci_high=None if suppressed else round(row.ci_high, 2),
            )
        )
    return out


async def has_demo(session: AsyncSession) -> bool:
    found = await session.scalar(select(Submission.id).where(Submission.demo).limit(1))
    return found is not None


async def performance(session: AsyncSession, q: PerformanceQuery) -> Performance:
    """The figures for ``q``, from the rollup as it was last refreshed."""
    return Performance(
        group=q.group,
        period=q.period,
        rows=await _rows(session, q),
        disparity=await _disparity(session, q),
        demo=await has_demo(session),
    )
