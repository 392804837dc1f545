"""What support tells a resident (an agent's reply, a handback, a transfer, a timeout) goes
through the notification outbox, in the caller's transaction: the change to the ticket and the
message commit together, and the dispatcher sends it in order, paced, with receipts.

Example::

    async with sessionmaker() as session, session.begin():
        ticket, notice = await support.hand_back(session, identity, 12, "resolved", ...)
        await tell_resident(session, ticket, notice, now=now)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from notifier.outbox import enqueue
from notifier.ports import ResidentMessage
from storage.models import SupportTicket

__all__ = ["AGENT_PURPOSE", "reopening_templates", "tell_resident"]

# The purpose support messages go out under (WhatsApp's template for it outside 24 hours).
AGENT_PURPOSE = "agent_reply"
# The notifier's own templates, whose placeholders are a reference, a status or a digest
# (docs/configuration.md): no use for reopening a conversation with a few words.
_NOTICE_PURPOSES = frozenset({"report_filed", "status_update", "report_digest"})


def reopening_templates(templates: Mapping[str, str]) -> list[str]:
    """The configured WhatsApp templates (``TWILIO_WHATSAPP_TEMPLATES``, the ones a broadcast
    may choose) an agent may send to reopen a conversation: those whose one placeholder is a
    text, as a broadcast's is."""
    return sorted(name for name in templates if name not in _NOTICE_PURPOSES)


async def tell_resident(
    session: AsyncSession,
    ticket: SupportTicket,
    text: str,
    *,
    now: datetime,
    template: str | None = None,
) -> bool:
    """Queue ``text`` for the ticket's resident; False when there is nobody to tell (erased).

    Outside WhatsApp's 24-hour window the channel sends the approved template configured for
    the purpose, ``template`` when given (else the agent reply's), with ``text`` as its one
    placeholder, as a broadcast does."""
    if ticket.resident_id is None or ticket.address is None:
        return False
    message = ResidentMessage(
        resident_id=ticket.resident_id,
        channel=ticket.channel,
        locale=ticket.locale,
        text=text,
        purpose=template or AGENT_PURPOSE,
        reference=f"T{ticket.id}",
        template_variables={"text": text},
    )
    await enqueue(session, message, submission_id=None, now=now)
    return True
