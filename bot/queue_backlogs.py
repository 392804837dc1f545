"""Every durable queue's backlog, age and failures, read from the database at each scrape.

| queue | table | waiting | failing |
|---|---|---|---|
| ``filing`` | ``submission_outbox`` | reports not yet filed with the city | tried and failed at least once |
| ``notices`` | ``resident_notifications`` | status and filed notices not yet sent | tried and failed at least once |
| ``broadcasts`` | ``broadcast_deliveries`` | broadcast messages queued or being sent | failed finally |
| ``held`` | ``held_messages`` | inbound messages held over a rate limit or while Redis was away | - |
| ``pending_replies`` | ``pending_replies`` | replies committed without Redis, not yet sent | - |

A backlog that only grows, or an old oldest item, means nothing is working it: is a worker
running, is the city or a provider down? The reply streams (Redis) are read apart, in
``bot.web.operations``.

Example::

    for backlog in await read_backlogs(sessionmaker):   # [Backlog("filing", 3, 12.5, 1), ...]
        ...
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import (
    BroadcastDelivery,
    HeldMessage,
    PendingReply,
    ResidentNotification,
    SubmissionOutbox,
)
from storage.types import utc_now

__all__ = ["QUEUES", "Backlog", "read_backlogs"]

QUEUES = ("filing", "notices", "broadcasts", "held", "pending_replies")


@dataclass(frozen=True, slots=True)
class Backlog:
    queue: str
    waiting: int
    oldest_seconds: float
    failing: int


async def read_backlogs(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Backlog]:
    now = utc_now()

    def age(oldest: datetime | None) -> float:
        return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0

    async with sessionmaker() as session:
        filing = (
            await session.execute(
                select(
                    func.count(),
                    func.min(SubmissionOutbox.created_at),
                    func.coalesce(func.sum(case((SubmissionOutbox.attempts > 0, 1), else_=0)), 0),
                ).where(SubmissionOutbox.done_at.is_(None))
            )
        ).one()
        notices = (
            await session.execute(
                select(
                    func.count(),
                    func.min(ResidentNotification.created_at),
                    func.coalesce(
                        func.sum(case((ResidentNotification.attempts > 0, 1), else_=0)), 0
                    ),
                ).where(ResidentNotification.state == "pending")
            )
        ).one()
        # Counted through the (state, ...) index: a million delivered rows are never read.
        sending = await session.scalar(
            select(func.count()).where(BroadcastDelivery.state.in_(("queued", "sending")))
        )
        failed = await session.scalar(
            select(func.count()).where(BroadcastDelivery.state == "failed")
        )
        held = (await session.execute(select(func.count(), func.min(HeldMessage.held_at)))).one()
        pending = (
            await session.execute(select(func.count(), func.min(PendingReply.created_at)))
        ).one()
    return [
        Backlog("filing", int(filing[0]), age(filing[1]), int(filing[2])),
        Backlog("notices", int(notices[0]), age(notices[1]), int(notices[2])),
        Backlog("broadcasts", int(sending or 0), 0.0, int(failed or 0)),
        Backlog("held", int(held[0]), age(held[1]), 0),
        Backlog("pending_replies", int(pending[0]), age(pending[1]), 0),
    ]
