"""Where a waiting support ticket stands: its place in the queue and the expected wait.

Both sides need the same figures: the resident is told them when they ask for a person
(``conversations.support``) and told again when the wait grows (``staff.support_timeouts``).
They are middle-floor neighbours that do not import each other, so the query lives here.

The expected wait is the median of the last ``RECENT`` waits (asking to first claim); a
conversation staff opened themselves kept nobody waiting and is not one of them.

Example::

    async with sessionmaker() as session:
        minutes = await expected_wait_minutes(session)        # None before any claim
        position = await queue_position(session, ticket)      # 1: next
"""

from __future__ import annotations

import statistics

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import SupportTicket

__all__ = ["RECENT", "expected_wait_minutes", "queue_position"]

# How many recent claims the expected wait is taken from.
RECENT = 20


async def expected_wait_minutes(session: AsyncSession) -> int | None:
    """The median of the recent waits in whole minutes (at least 1), None before any claim."""
    recent = (
        await session.execute(
            select(SupportTicket.created_at, SupportTicket.claimed_at)
            .where(SupportTicket.claimed_at.is_not(None), SupportTicket.reason != "staff")
            .order_by(SupportTicket.claimed_at.desc())
            .limit(RECENT)
        )
    ).all()
    waits = [(claimed - created).total_seconds() for created, claimed in recent if claimed]
    return max(1, round(statistics.median(waits) / 60)) if waits else None


async def queue_position(session: AsyncSession, ticket: SupportTicket) -> int:
    """1 for the next to be answered: the waiting tickets of a higher priority, or of the same
    one that came earlier, are ahead. A ticket no longer waiting is 1 (it is being answered)."""
    if ticket.state != "waiting":
        return 1
    ahead = await session.scalar(
        select(func.count()).where(
            SupportTicket.state == "waiting",
            or_(
                SupportTicket.priority > ticket.priority,
                and_(
                    SupportTicket.priority == ticket.priority,
                    SupportTicket.created_at < ticket.created_at,
                ),
            ),
        )
    )
    return int(ahead or 0) + 1
