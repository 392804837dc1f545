"""Keep the open data's rollup current: redo only the periods whose requests changed.

A refresh reads what happened since the one before (submissions and status changes past the ids
it remembers in ``open_data_refresh``), works out the weeks and months those requests were
received in, and recomputes each such period from its requests: the counts and hour
histograms per service, ward and area type (``open_data_rollup``), then the informal/formal
disparity with its bootstrap interval for every service and ward and for all of them
(``open_data_disparity``). The most recent periods are always redone, because a request still
open becomes overdue as time passes. The 250 m grid's counts (``open_data_cells``) are counted
afresh each time, in one SQL statement.

The first refresh (or ``rebuild``) does every period. ``citybot serve`` and ``citybot worker``
run it every ``interval_seconds`` (the ``open_data`` worker); ``citybot demo seed`` and ``demo
clear`` rebuild at once.

Example::

    rollup = Rollup(sessionmaker, RollupSettings(timezone="Africa/Johannesburg"), grid)
    await rollup.refresh()        # -> RefreshReport(periods=2, requests=1830, disparities=41)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from staff.analytics import (
    FORMAL,
    INFORMAL,
    MIN_GROUP,
    PERIODS,
    SERVICE_TARGET_HOURS,
    period_range,
    period_start,
    target_hours,
)
from staff.hour_histograms import bucket_of, ratio_interval
from staff.open_data_rows import Grid
from storage.models import (
    RequestStatusChange,
    Submission,
    TrackedRequest,
    open_data_cells,
    open_data_disparity,
    open_data_refresh,
    open_data_rollup,
)
from storage.models.open_data import ALL, HISTOGRAM_BUCKETS

__all__ = ["REFRESH_LOCK", "RefreshReport", "Rollup", "RollupSettings"]

log = logging.getLogger("citybot.open_data")

_B = HISTOGRAM_BUCKETS
# The accumulator of one group: five counts, then the two histograms.
_REQUESTS, _ACKED, _CLOSED, _DUE, _WITHIN = range(5)
_ACK, _CLOSE = 5, 5 + _B
_WIDTH = 5 + 2 * _B
_INSERT_BATCH = 1000
# The advisory lock one refreshing process holds ("citybot open data", as a number).
REFRESH_LOCK = 0x6F70656E64617461


@dataclass(frozen=True, slots=True)
class RollupSettings:
    timezone: str = "Africa/Johannesburg"
    interval_seconds: float = 300.0
    # Bootstrap resamples per disparity, and the seed that makes them repeatable.
    resamples: int = 1000
    seed: str = "citybot-open-data"


@dataclass(frozen=True, slots=True)
class RefreshReport:
    periods: int
    requests: int
    disparities: int


Accumulators = dict[tuple[str, str, str], list[int]]


class Rollup:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: RollupSettings,
        grid: Grid,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.grid = grid
        self.clock = clock
        self.zone = ZoneInfo(settings.timezone)

    async def run_once(self) -> int:
        """One refresh; always 0, so the worker rests ``interval_seconds`` between them."""
        await self.refresh()
        return 0

    async def rebuild(self) -> RefreshReport:
        """Every period afresh (after ``demo clear`` removed rows, or on first use)."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(delete(open_data_refresh))
        return await self.refresh()

    async def refresh(self) -> RefreshReport:
        """Redo what changed; a no-op while another process is refreshing (PostgreSQL)."""
        async with self._alone() as alone:
            if not alone:
                return RefreshReport(0, 0, 0)
            return await self._refresh()

    @contextlib.asynccontextmanager
    async def _alone(self) -> AsyncIterator[bool]:
        """Whether this process may refresh now: with several worker processes on PostgreSQL,
        one at a time (a session advisory lock, on a connection held for the refresh)."""
        engine: AsyncEngine = self.sessionmaker.kw["bind"]
        if engine.dialect.name != "postgresql":
            yield True
            return
        async with engine.connect() as connection:
            held = bool(
                await connection.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": REFRESH_LOCK}
                )
            )
            await connection.commit()
            try:
                yield held
            finally:
                if held:
                    await connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": REFRESH_LOCK}
                    )
                    await connection.commit()

    async def _refresh(self) -> RefreshReport:
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            state = (await session.execute(select(open_data_refresh))).first()
            if state is None:
                # From nothing: periods whose requests are all gone (demo clear) go too.
                await session.execute(delete(open_data_rollup))
                await session.execute(delete(open_data_disparity))
        async with self.sessionmaker() as session:
            last_submission = await session.scalar(select(func.max(Submission.id))) or 0
            last_change = await session.scalar(select(func.max(RequestStatusChange.id))) or 0
            if state is None:
                days = await self._every_day(session)
            else:
                days = await self._changed_days(
                    session, state.last_submission_id, state.last_change_id, now
                )
        periods = sorted({(kind, period_start(d, kind)) for d in days for kind in PERIODS})
        requests = disparities = 0
        for kind, start in periods:
            counted, compared = await self._redo(kind, start, now)
            requests += counted if kind == "week" else 0
            disparities += compared
        async with self.sessionmaker() as session, session.begin():
            await self._count_cells(session)
            await session.execute(delete(open_data_refresh))
            await session.execute(
                insert(open_data_refresh).values(
                    id=1,
                    last_submission_id=last_submission,
                    last_change_id=last_change,
                    refreshed_at=now,
                )
            )
        report = RefreshReport(len(periods), requests, disparities)
        if periods:
            log.info(
                "open data refreshed",
                extra={"periods": report.periods, "requests": report.requests},
            )
        return report

    # -- which days changed ----------------------------------------------------------------

    def _day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    async def _every_day(self, session: AsyncSession) -> set[date]:
        first = await session.scalar(select(func.min(Submission.created_at)))
        last = await session.scalar(select(func.max(Submission.created_at)))
        if first is None or last is None:
            return set()
        return _days_between(self._day(first), self._day(last))

    async def _changed_days(
        self, session: AsyncSession, last_submission: int, last_change: int, now: datetime
    ) -> set[date]:
        # New requests are nearly always recent: from the oldest of them to today.
        oldest_new = await session.scalar(
            select(func.min(Submission.created_at)).where(Submission.id > last_submission)
        )
        days = set()
        if oldest_new is not None:
            days |= _days_between(self._day(oldest_new), self._day(now))
        changed = await session.scalars(
            select(Submission.created_at)
            .join(RequestStatusChange, RequestStatusChange.submission_id == Submission.id)
            .where(RequestStatusChange.id > last_change)
            .distinct()
        )
        days |= {self._day(moment) for moment in changed}
        # Open requests turn overdue as time passes: the periods within the longest target.
        longest = max([*SERVICE_TARGET_HOURS.values(), 168.0])
        days |= _days_between(self._day(now - timedelta(hours=longest)), self._day(now))
        return days

    # -- one period ------------------------------------------------------------------------

    async def _redo(self, kind: str, start: date, now: datetime) -> tuple[int, int]:
        since, until = period_range(start, kind, self.zone)
        groups: Accumulators = defaultdict(lambda: [0] * _WIDTH)
        s, t = Submission, TrackedRequest
        query = (
            select(
                s.service_code,
                s.ward,
                s.area_type,
                s.created_at,
                t.acknowledged_at,
                t.closed_at,
            )
            .outerjoin(t, t.submission_id == s.id)
            .where(s.created_at >= since, s.created_at < until)
        )
        counted = 0
        async with self.sessionmaker() as session:
            result = await session.stream(query.execution_options(yield_per=5000))
            async for service, ward, area_type, received, acked, closed in result:
                _count(groups, service, ward, area_type, received, acked, closed, now)
                counted += 1
        # Seconds of arithmetic for a big period: in a thread, so a web process's event loop
        # (the worker runs inside ``citybot serve``) keeps answering meanwhile.
        rows, disparities = await asyncio.to_thread(self._outcome, kind, start, groups)
        r, d = open_data_rollup.c, open_data_disparity.c
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                delete(open_data_rollup).where(r.period == kind, r.period_start == start)
            )
            await session.execute(
                delete(open_data_disparity).where(d.period == kind, d.period_start == start)
            )
            for i in range(0, len(rows), _INSERT_BATCH):
                await session.execute(insert(open_data_rollup), rows[i : i + _INSERT_BATCH])
            if disparities:
                await session.execute(insert(open_data_disparity), disparities)
        return counted, len(disparities)

    def _outcome(
        self, kind: str, start: date, groups: Accumulators
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The period's rollup rows and disparity rows."""
        rows = [_rollup_row(kind, start, key, sums) for key, sums in _with_totals(groups).items()]
        return rows, list(self._disparities(kind, start, groups))

    def _disparities(
        self, kind: str, start: date, groups: Accumulators
    ) -> Iterable[dict[str, Any]]:
        """The informal/formal ratio of median time to close for every service and ward, and
        for all of them, where both sides closed anything."""
        close: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * _B)
        for (service, ward, area_type), sums in groups.items():
            if area_type not in (INFORMAL, FORMAL):
                continue
            for key in ((service, ward), (service, ALL), (ALL, ward), (ALL, ALL)):
                into = close[(*key, area_type)]
                for i, n in enumerate(sums[_CLOSE : _CLOSE + _B]):
                    into[i] += n
        pairs = {(service, ward) for service, ward, _ in close}
        for service, ward in sorted(pairs):
            informal = close.get((service, ward, INFORMAL), [0] * _B)
            formal = close.get((service, ward, FORMAL), [0] * _B)
            n_informal, n_formal = sum(informal), sum(formal)
            if not n_informal or not n_formal:
                continue
            ratio = ci_low = ci_high = None
            if n_informal >= MIN_GROUP and n_formal >= MIN_GROUP:
                found = ratio_interval(
                    informal,
                    formal,
                    seed=f"{self.settings.seed}:{kind}:{start}:{service}:{ward}",
                    resamples=self.settings.resamples,
                )
                if found is not None:
                    ratio, ci_low, ci_high = found
            yield {
                "period": kind,
                "period_start": start,
                "service_code": service,
                "ward": ward,
                "informal_count": n_informal,
                "formal_count": n_formal,
                "ratio": ratio,
                "ci_low": ci_low,
                "ci_high": ci_high,
            }

    async def _count_cells(self, session: AsyncSession) -> None:
        connection = await session.connection()
        row, col = self.grid.cell_sql(connection.dialect.name)
        counted = (
            select(row.label("cell_row"), col.label("cell_col"), func.count().label("requests"))
            .where(Submission.lat.is_not(None), Submission.lon.is_not(None))
            .group_by(row, col)
        )
        await session.execute(delete(open_data_cells))
        await session.execute(
            insert(open_data_cells).from_select(["cell_row", "cell_col", "requests"], counted)
        )


def _with_totals(groups: Accumulators) -> Accumulators:
    """The groups, and their sums over every ward, every service and both (``ALL``): a query
    for a city-wide figure then sums a few hundred rows a year, not every ward's."""
    totals: Accumulators = defaultdict(lambda: [0] * _WIDTH)
    for (service, ward, area_type), sums in groups.items():
        for key in ((service, ALL, area_type), (ALL, ward, area_type), (ALL, ALL, area_type)):
            into = totals[key]
            for i, n in enumerate(sums):
                if n:
                    into[i] += n
    return {**groups, **totals}


def _days_between(first: date, last: date) -> set[date]:
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}


def _hours(since: datetime, until: datetime) -> float:
    return (until - since).total_seconds() / 3600


def _count(
    groups: Accumulators,
    service: str,
    ward: str | None,
    area_type: str | None,
    received: datetime,
    acked: datetime | None,
    closed: datetime | None,
    now: datetime,
) -> None:
    sums = groups[(service, ward or "unknown", area_type or "unknown")]
    sums[_REQUESTS] += 1
    target = target_hours(service)
    if acked is not None:
        sums[_ACKED] += 1
        sums[_ACK + bucket_of(_hours(received, acked))] += 1
    if closed is not None:
        hours = _hours(received, closed)
        sums[_CLOSED] += 1
        sums[_DUE] += 1
        sums[_CLOSE + bucket_of(hours)] += 1
        if hours <= target:
            sums[_WITHIN] += 1
    elif _hours(received, now) > target:
        sums[_DUE] += 1


def _rollup_row(
    kind: str, start: date, key: tuple[str, str, str], sums: list[int]
) -> dict[str, Any]:
    service, ward, area_type = key
    row: dict[str, Any] = {
        "period": kind,
        "period_start": start,
        "service_code": service,
        "ward": ward,
        "area_type": area_type,
        "requests": sums[_REQUESTS],
        "acknowledged": sums[_ACKED],
        "closed": sums[_CLOSED],
        "due": sums[_DUE],
        "closed_within_target": sums[_WITHIN],
    }
    for i in range(_B):
        row[f"ack_{i}"] = sums[_ACK + i]
        row[f"close_{i}"] = sums[_CLOSE + i]
    return row
