"""Staff open a conversation the resident never asked about: an agent or a supervisor finds the
resident by one of their reports' references and takes the conversation over on one channel.

The ticket enters the queue already held by that agent (reason ``staff``, within their limit of
open conversations), so the bot falls silent as for any takeover (``conversations.support``
reads open tickets from the database); the caller tells the resident, in their language, that
a person has joined. Each function works in the caller's transaction and audits what it does:
``support.lookup`` (a view of personal data, target ``resident:N``) and ``support.takeover``
(target ``ticket:N``).

* **Ward scope.** A ward-scoped account finds only reports in its wards, and takes over only a
  resident whose latest report is in them (as the ticket's ward says to everyone else).
* **One open conversation.** The resident's address row is locked while the ticket is written,
  so two agents who click at once open one ticket: the other gets ``Conflict``. A conversation
  already waiting or held is taken from the queue, not opened twice.
* **Nobody reachable.** An opted-out or erased resident cannot be written to: ``Conflict``.

Example::

    async with sessionmaker() as session, session.begin():
        found = await find_conversations(session, identity, "CT-7KQ4XM", address="10.0.0.5")
        ticket, notice = await take_over(
            session, identity, found[0].address_id, now=now, limit=5, address="10.0.0.5"
        )
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forms_runtime.i18n import N_, tr
from staff import audit
from staff.errors import Conflict, InvalidStaffInput, NotFound
from staff.identity import StaffIdentity
from staff.support import held_by
from storage.models import Resident, ResidentAddress, Submission, SupportMessage, SupportTicket

__all__ = ["JOINED_NOTICE", "ResidentConversation", "find_conversations", "take_over"]

JOINED_NOTICE = N_(
    "A person from the city has joined this conversation and will write to you here."
)
_OPEN = ("waiting", "held")


@dataclass(frozen=True, slots=True)
class ResidentConversation:
    """One channel a resident may be written to on, and what stands in the way."""

    address_id: int
    resident_id: int
    channel: str
    # Personal data: the caller masks it.
    address: str
    language: str
    last_inbound_at: datetime | None
    opted_out: bool
    # The conversation already with a person (or waiting for one), if any.
    open_ticket_id: int | None


async def find_conversations(
    session: AsyncSession, identity: StaffIdentity, reference: str, *, address: str | None
) -> list[ResidentConversation]:
    """The conversations of the resident who made report ``reference`` (in the caller's wards),
    one per channel they wrote on; ``NotFound`` when there is no such report for the caller."""
    wanted = reference.strip().upper()
    if not wanted or len(wanted) > 16:
        raise InvalidStaffInput("give a report's reference, like CT-7KQ4XM")
    query = select(Submission.resident_id, Submission.ward).where(Submission.reference == wanted)
    row = (await session.execute(query)).first()
    resident_id, ward = row if row is not None else (None, None)
    if resident_id is None or (identity.wards is not None and ward not in identity.wards):
        raise NotFound(f"there is no report {wanted}")
    resident = await session.get(Resident, resident_id)
    assert resident is not None  # the report's foreign key holds it
    rows = (
        await session.scalars(
            select(ResidentAddress)
            .where(ResidentAddress.resident_id == resident_id)
            .order_by(ResidentAddress.last_inbound_at.desc().nulls_last(), ResidentAddress.id)
        )
    ).all()
    found = [
        ResidentConversation(
            address_id=a.id,
            resident_id=resident_id,
            channel=a.channel,
            address=a.address,
            language=resident.locale,
            last_inbound_at=a.last_inbound_at,
            opted_out=resident.opted_out_at is not None or resident.erased_at is not None,
            open_ticket_id=await _open_ticket(session, a.channel, a.address),
        )
        for a in rows
    ]
    await audit.record(
        session,
        actor=identity.actor,
        action="support.lookup",
        target=f"resident:{resident_id}",
        address=address,
        details={"reference": wanted},
    )
    return found


async def _open_ticket(session: AsyncSession, channel: str, address: str) -> int | None:
    return await session.scalar(
        select(SupportTicket.id).where(
            SupportTicket.channel == channel,
            SupportTicket.address == address,
            SupportTicket.state.in_(_OPEN),
        )
    )


async def _latest_ward(session: AsyncSession, resident_id: int) -> str | None:
    # The ward a resident-opened ticket gets too (their latest report that has one).
    return await session.scalar(
        select(Submission.ward)
        .where(Submission.resident_id == resident_id, Submission.ward.is_not(None))
        .order_by(Submission.id.desc())
        .limit(1)
    )


async def take_over(
    session: AsyncSession,
    identity: StaffIdentity,
    address_id: int,
    *,
    now: datetime,
    limit: int,
    topic: str | None = None,
    address: str | None,
) -> tuple[SupportTicket, str]:
    """Open the conversation on ``address_id`` held by the caller at once. Returns the ticket
    and what the resident is told, in their language (the caller sends it)."""
    # Locked so that of two agents who click at once, the second sees the first one's ticket.
    reach = await session.scalar(
        select(ResidentAddress).where(ResidentAddress.id == address_id).with_for_update()
    )
    resident = await session.get(Resident, reach.resident_id) if reach is not None else None
    ward = await _latest_ward(session, resident.id) if resident is not None else None
    if (
        reach is None
        or resident is None
        or (identity.wards is not None and ward not in identity.wards)
    ):
        raise NotFound(f"there is no conversation {address_id}")
    if resident.opted_out_at is not None or resident.erased_at is not None:
        raise Conflict("the resident has opted out: nothing may be sent to them")
    already = await _open_ticket(session, reach.channel, reach.address)
    if already is not None:
        raise Conflict(f"conversation {already} is already open: take it from the queue")
    if await held_by(session, identity.account_id) >= limit:
        raise Conflict(f"you already hold {limit} conversations: hand one back first")
    ticket = SupportTicket(
        resident_id=resident.id,
        channel=reach.channel,
        address=reach.address,
        locale=resident.locale,
        reason="staff",
        topic=topic,
        ward=ward,
        priority=0,
        state="held",
        agent_id=identity.account_id,
        created_at=now,
        queued_at=now,
        claimed_at=now,
        held_since=now,
    )
    session.add(ticket)
    await session.flush()
    session.add(
        SupportMessage(
            ticket_id=ticket.id,
            direction="system",
            author_id=identity.account_id,
            text="opened by an agent from the console",
            at=now,
        )
    )
    await audit.record(
        session,
        actor=identity.actor,
        action="support.takeover",
        target=f"ticket:{ticket.id}",
        address=address,
        details={"resident": resident.id, "channel": reach.channel},
    )
    return ticket, tr(ticket.locale, JOINED_NOTICE)
