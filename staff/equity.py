"""The equity watch: a service in a ward where informal settlements keep waiting much longer.

An alert is raised when a service's disparity ratio in a ward (informal settlements' median time
to close over formal areas', from ``open_data_disparity``) is above the threshold in two periods
in a row. Only published ratios count (both sides with at least ``MIN_GROUP`` closed requests).
An alert is *current* when its second period is one of the two latest periods the rollup holds
(the latest is usually still running); ``/metrics`` counts the current ones.

Example::

    async with sessionmaker() as session:
        alerts = await equity_alerts(session, threshold=1.5, period="month")
    alerts[0].service, alerts[0].ward, alerts[0].ratio     # "WATER-LEAK", "94", 2.3
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from staff.analytics import next_period
from storage.models import open_data_disparity
from storage.models.open_data import ALL

__all__ = ["EquityAlert", "equity_alerts"]


@dataclass(frozen=True, slots=True)
class EquityAlert:
    service: str
    ward: str
    period: str
    # The second period above the threshold, and the one before it.
    period_start: date
    previous_start: date
    ratio: float
    previous_ratio: float
    ci_low: float
    ci_high: float
    informal_count: int
    formal_count: int
    current: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "ward": self.ward,
            "period": self.period,
            "period_start": self.period_start.isoformat(),
            "previous_start": self.previous_start.isoformat(),
            "ratio": round(self.ratio, 2),
            "previous_ratio": round(self.previous_ratio, 2),
            "ci_low": round(self.ci_low, 2),
            "ci_high": round(self.ci_high, 2),
            "informal_count": self.informal_count,
            "formal_count": self.formal_count,
            "current": self.current,
        }


async def equity_alerts(
    session: AsyncSession,
    *,
    threshold: float,
    period: str,
    wards: Collection[str] | None = None,
) -> list[EquityAlert]:
    """Every alert the rollup shows, newest first (within ``wards`` when given)."""
    d = open_data_disparity.c
    latest = await session.scalar(select(func.max(d.period_start)).where(d.period == period))
    if latest is None:
        return []
    recent = {latest}
    # The period before the latest (which is usually still running) is current too.
    before = await session.scalar(
        select(func.max(d.period_start)).where(d.period == period, d.period_start < latest)
    )
    if before is not None:
        recent.add(before)
    query = select(open_data_disparity).where(
        d.period == period,
        d.service_code != ALL,
        d.ward != ALL,
        d.ratio.is_not(None),
        d.ratio > threshold,
    )
    if wards is not None:
        query = query.where(d.ward.in_(sorted(wards)))
    above = {
        (row.service_code, row.ward, row.period_start): row for row in await session.execute(query)
    }
    alerts = []
    for (service, ward, start), row in above.items():
        following = next_period(start, period)
        second = above.get((service, ward, following))
        if second is None:
            continue
        alerts.append(
            EquityAlert(
                service=service,
                ward=ward,
                period=period,
                period_start=following,
                previous_start=start,
                ratio=second.ratio,
                previous_ratio=row.ratio,
                ci_low=second.ci_low,
                ci_high=second.ci_high,
                informal_count=second.informal_count,
                formal_count=second.formal_count,
                current=following in recent,
            )
        )
    alerts.sort(key=lambda a: (a.period_start, a.ratio), reverse=True)
    return alerts
