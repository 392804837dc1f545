"""How the support queue is doing, for supervisors and for ``/metrics``.

Now: conversations waiting (by team), held, the longest wait so far, and each agent's load.
Over a window (the last 24 hours by default): how long residents waited for a person (p50, p90,
from arriving to the first claim), how long before the agent's first answer (from the claim),
how long a conversation took (claim to close), and how conversations ended (outcomes).

Example::

    async with sessionmaker() as session:
        stats = await support_stats(session, now=utc_now(), wards=identity.wards)
    stats.wait.p90        # seconds, or None before there is anything to measure
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import StaffAccount, SupportTicket

__all__ = ["AgentLoad", "Percentiles", "SupportStats", "support_stats"]

DEFAULT_WINDOW = timedelta(hours=24)
# Closed tickets read for the window's figures at most (the newest first).
_MAX_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Seconds; None when nothing in the window had this figure."""

    count: int = 0
    p50: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, seconds: Iterable[float]) -> Percentiles:
        values = sorted(s for s in seconds if s >= 0)
        if not values:
            return cls()
        if len(values) == 1:
            return cls(1, values[0], values[0])
        cuts = statistics.quantiles(values, n=10, method="inclusive")
        return cls(len(values), round(statistics.median(values), 1), round(cuts[8], 1))


@dataclass(frozen=True, slots=True)
class AgentLoad:
    agent_id: int
    name: str
    held: int


@dataclass(frozen=True, slots=True)
class SupportStats:
    window_hours: float
    waiting: int
    waiting_by_team: dict[str, int]
    held: int
    oldest_wait_seconds: float
    wait: Percentiles
    first_response: Percentiles
    handle: Percentiles
    agents: list[AgentLoad] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)


async def support_stats(
    session: AsyncSession,
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    wards: Collection[str] | None = None,
) -> SupportStats:
    """The figures for the tickets of ``wards`` (all with None). Columns, not whole tickets,
    are read: ``/metrics`` asks at every scrape."""
    T_ = SupportTicket
    scope = [] if wards is None else [T_.ward.in_(sorted(wards))]
    open_rows = (
        await session.execute(
            select(T_.state, T_.team, T_.created_at, T_.agent_id).where(
                T_.state.in_(("waiting", "held")), *scope
            )
        )
    ).all()
    waiting = [row for row in open_rows if row.state == "waiting"]
    held = [row for row in open_rows if row.state == "held"]
    by_team = Counter(row.team or "" for row in waiting)
    oldest = max(((now - row.created_at).total_seconds() for row in waiting), default=0.0)

    since = now - window
    recent = (
        await session.execute(
            select(
                T_.created_at,
                T_.claimed_at,
                T_.first_response_at,
                T_.closed_at,
                T_.outcome,
                T_.reason,
            )
            .where((T_.claimed_at >= since) | (T_.closed_at >= since), *scope)
            .order_by(T_.id.desc())
            .limit(_MAX_ROWS)
        )
    ).all()
    waits = [
        (t.claimed_at - t.created_at).total_seconds()
        for t in recent
        # A conversation staff opened themselves kept nobody waiting.
        if t.claimed_at is not None and t.claimed_at >= since and t.reason != "staff"
    ]
    first = [
        (t.first_response_at - t.claimed_at).total_seconds()
        for t in recent
        if t.first_response_at is not None
        and t.claimed_at is not None
        and t.first_response_at >= since
    ]
    closed = [t for t in recent if t.closed_at is not None and t.closed_at >= since]
    handle = [
        (t.closed_at - t.claimed_at).total_seconds()
        for t in closed
        if t.closed_at is not None and t.claimed_at is not None
    ]
    outcomes = Counter(t.outcome or "unknown" for t in closed)

    load = Counter(row.agent_id for row in held if row.agent_id is not None)
    names: dict[int, str] = {}
    if load:
        rows = await session.execute(
            select(StaffAccount.id, StaffAccount.name, StaffAccount.email).where(
                StaffAccount.id.in_(sorted(load))
            )
        )
        names = {account_id: name or email for account_id, name, email in rows}
    agents = [
        AgentLoad(agent_id, names.get(agent_id, ""), count)
        for agent_id, count in sorted(load.items(), key=lambda item: (-item[1], item[0]))
    ]
    return SupportStats(
        window_hours=window.total_seconds() / 3600,
        waiting=len(waiting),
        waiting_by_team=dict(sorted(by_team.items())),
        held=len(held),
        oldest_wait_seconds=round(oldest, 1),
        wait=Percentiles.of(waits),
        first_response=Percentiles.of(first),
        handle=Percentiles.of(handle),
        agents=agents,
        outcomes=dict(sorted(outcomes.items())),
    )
