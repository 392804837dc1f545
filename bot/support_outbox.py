"""What support tells a resident (an agent's reply, a handback, a transfer, a timeout) goes
through the notification outbox, in the caller's transaction: the change to the ticket and the
message commit together, and the dispatcher sends it in order, paced, with receipts.

Example::

    async with sessionmaker() as session, session.begin():
        ticket, notice = await support.hand_back(session, identity, 12, "resolved", ...)
        await tell_resident(session, ticket, notice, now=now)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from notifier.outbox import enqueue
from notifier.ports import ResidentMessage
from storage.models import SupportTicket

__all__ = ["AGENT_PURPOSE", "tell_resident"]

# The purpose support messages go out under (WhatsApp's template for it outside 24 hours).
AGENT_PURPOSE = "agent_reply"


async def tell_resident(
    session: AsyncSession, ticket: SupportTicket, text: str, *, now: datetime
) -> bool:
    """Queue ``text`` for the ticket's resident; False when there is nobody to tell (erased)."""
    if ticket.resident_id is None or ticket.address is None:
        return False
    message = ResidentMessage(
        resident_id=ticket.resident_id,
        channel=ticket.channel,
        locale=ticket.locale,
        text=text,
        purpose=AGENT_PURPOSE,
        reference=f"T{ticket.id}",
    )
    await enqueue(session, message, submission_id=None, now=now)
    return True
