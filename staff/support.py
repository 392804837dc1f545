"""Support takeover, the staff side: the queue, claiming a conversation, replying, notes,
transferring it to another agent or a team, reopening a WhatsApp conversation with an approved
template, and handing it back to the bot. (Staff opening a conversation the resident never
asked about: ``staff.support_takeover``.)

Each function works in the caller's transaction and audits what it does (``support.claim``,
``.reply``, ``.note``, ``.handback``, ``.assign``, ``.transfer``, ``.template``, ``.view``), so
the change and its audit row commit together. The resident's side (opening a ticket, the bot
keeping silent) is ``conversations.support``; what an agent sends reaches the resident through
the notification outbox (the caller enqueues it in the same transaction), in order, paced,
with receipts.

* **Claim.** One conditional update: of two agents who click at once exactly one wins; the
  other gets ``Conflict`` ("already taken"). An agent holds at most ``limit`` conversations.
* **Ward scope.** A ward-scoped account sees and takes only tickets of residents in its wards;
  a ticket whose ward is unknown is for city-wide staff.
* **Teams.** A ticket may be for a team (a language or a department: ``zu``, ``electricity``);
  the queue filters by it, and a transfer to a team puts the ticket back in the queue for it.
* **Personal data.** The resident's address is masked in every answer.

Example::

    async with sessionmaker() as session, session.begin():
        ticket = await claim(session, identity, 12, now=now, limit=5, address="10.0.0.5")
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forms_runtime.i18n import N_, tr
from staff import audit
from staff.errors import Conflict, InvalidStaffInput, NotFound
from staff.identity import StaffIdentity
from staff.roles import Permission, Role, permissions_for
from storage.models import StaffAccount, Submission, SupportMessage, SupportTicket

__all__ = [
    "HANDBACK_NOTICE",
    "MAX_TEXT",
    "OUTCOMES",
    "REOPEN_TEXT",
    "TRANSFER_NOTICE",
    "TicketView",
    "assign",
    "claim",
    "hand_back",
    "held_by",
    "note",
    "queue",
    "reopen",
    "reply",
    "team_name",
    "transfer",
    "view",
]

MAX_TEXT = 1600
OUTCOMES = ("resolved", "handed_back", "no_answer", "referred", "duplicate")
HANDBACK_NOTICE = N_(
    "You are talking to the city's assistant again. Carry on where you were, or send MENU."
)
TRANSFER_NOTICE = N_("Another member of staff will carry on with you here.")
# What fills an approved WhatsApp template's one placeholder when an agent reopens the
# conversation after 24 hours of silence.
REOPEN_TEXT = N_(
    "The city's support team would like to carry on your conversation. Reply to this message to talk to them."
)
_OPEN = ("waiting", "held")
_TEAM = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")


async def _ticket(
    session: AsyncSession, identity: StaffIdentity, ticket_id: int, *, for_update: bool = False
) -> SupportTicket:
    query = select(SupportTicket).where(SupportTicket.id == ticket_id)
    if identity.wards is not None:
        query = query.where(SupportTicket.ward.in_(sorted(identity.wards)))
    if for_update:
        query = query.with_for_update()
    found = await session.scalar(query)
    if found is None:
        raise NotFound(f"there is no conversation {ticket_id}")
    return found


async def queue(
    session: AsyncSession,
    identity: StaffIdentity,
    *,
    language: str | None = None,
    channel: str | None = None,
    topic: str | None = None,
    team: str | None = None,
    include_held: bool = False,
    limit: int = 100,
) -> list[SupportTicket]:
    """Waiting conversations, highest priority first, then longest waiting (filtered by the
    resident's language, channel, topic or team: what an agent can handle). Those in the
    languages on the caller's account come first (an agent who speaks isiZulu and English sees
    those before an Afrikaans one they would have to pass on); an account without languages
    sees the plain order."""
    states = _OPEN if include_held else ("waiting",)
    query = select(SupportTicket).where(SupportTicket.state.in_(states))
    if identity.wards is not None:
        query = query.where(SupportTicket.ward.in_(sorted(identity.wards)))
    if language:
        query = query.where(SupportTicket.locale == language)
    if channel:
        query = query.where(SupportTicket.channel == channel)
    if topic:
        query = query.where(SupportTicket.topic == topic)
    if team:
        query = query.where(SupportTicket.team == team)
    spoken = await session.scalar(
        select(StaffAccount.languages).where(StaffAccount.id == identity.account_id)
    )
    spoken_first = [case((SupportTicket.locale.in_(sorted(spoken)), 0), else_=1)] if spoken else []
    ordered = query.order_by(
        *spoken_first, SupportTicket.priority.desc(), SupportTicket.created_at, SupportTicket.id
    ).limit(limit)
    return list((await session.scalars(ordered)).all())


async def claim(
    session: AsyncSession,
    identity: StaffIdentity,
    ticket_id: int,
    *,
    now: datetime,
    limit: int,
    address: str | None,
) -> SupportTicket:
    await _ticket(session, identity, ticket_id)
    if await held_by(session, identity.account_id) >= limit:
        raise Conflict(f"you already hold {limit} conversations: hand one back first")
    won = await session.execute(
        update(SupportTicket)
        .where(SupportTicket.id == ticket_id, SupportTicket.state == "waiting")
        .values(
            state="held",
            agent_id=identity.account_id,
            claimed_at=func.coalesce(SupportTicket.claimed_at, now),
            held_since=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(won, "rowcount", 0):
        raise Conflict(f"conversation {ticket_id} was taken by someone else, or has closed")
    session.add(
        SupportMessage(
            ticket_id=ticket_id,
            direction="system",
            author_id=identity.account_id,
            text="taken by an agent",
            at=now,
        )
    )
    await _audit(session, identity, "support.claim", ticket_id, address)
    return await _ticket(session, identity, ticket_id)


async def held_by(session: AsyncSession, agent_id: int) -> int:
    """How many conversations the agent holds, with their account locked to the end of the
    transaction: two claims for one agent at once (two tabs, a claim and a transfer to them)
    would otherwise both count the same number and both go past the limit. (SQLite has no row
    locks; it lets one writer at a time anyway.)"""
    await session.execute(
        select(StaffAccount.id).where(StaffAccount.id == agent_id).with_for_update()
    )
    held = await session.scalar(
        select(func.count()).where(
            SupportTicket.agent_id == agent_id, SupportTicket.state == "held"
        )
    )
    return int(held or 0)


def _holder(identity: StaffIdentity, ticket: SupportTicket) -> None:
    if ticket.state != "held" or ticket.agent_id != identity.account_id:
        raise Conflict(f"conversation {ticket.id} is not yours: take it from the queue first")


def _text(text: str) -> str:
    text = text.strip()
    if not text:
        raise InvalidStaffInput("write something")
    if len(text) > MAX_TEXT:
        raise InvalidStaffInput(f"at most {MAX_TEXT} characters")
    return text


async def reply(
    session: AsyncSession,
    identity: StaffIdentity,
    ticket_id: int,
    text: str,
    *,
    now: datetime,
    address: str | None,
) -> SupportTicket:
    """Record what the agent says; the caller enqueues it for the resident."""
    text = _text(text)
    ticket = await _ticket(session, identity, ticket_id, for_update=True)
    _holder(identity, ticket)
    session.add(
        SupportMessage(
            ticket_id=ticket.id, direction="agent", author_id=identity.account_id, text=text, at=now
        )
    )
    ticket.last_agent_at = now
    ticket.first_response_at = ticket.first_response_at or now
    await _audit(session, identity, "support.reply", ticket.id, address)
    return ticket


async def note(
    session: AsyncSession,
    identity: StaffIdentity,
    ticket_id: int,
    text: str,
    *,
    now: datetime,
    address: str | None,
) -> SupportTicket:
    """An internal note: kept with the conversation, never sent."""
    text = _text(text)
    ticket = await _ticket(session, identity, ticket_id)
    session.add(
        SupportMessage(
            ticket_id=ticket.id, direction="note", author_id=identity.account_id, text=text, at=now
        )
    )
    await _audit(session, identity, "support.note", ticket.id, address)
    return ticket


async def hand_back(
    session: AsyncSession,
    identity: StaffIdentity,
    ticket_id: int,
    outcome: str,
    *,
    now: datetime,
    address: str | None,
) -> tuple[SupportTicket, str]:
    """Close the conversation with an outcome; the bot answers again. Its holder, or a
    supervisor (``conversations.manage_queue``), may. Returns the ticket and the notice the
    caller sends the resident, in their language."""
    if outcome not in OUTCOMES:
        raise InvalidStaffInput(f"outcome is one of {', '.join(OUTCOMES)}")
    ticket = await _ticket(session, identity, ticket_id, for_update=True)
    if ticket.state not in _OPEN:
        raise Conflict(f"conversation {ticket.id} is closed already")
    if not identity.can(Permission.MANAGE_QUEUE):
        _holder(identity, ticket)
    ticket.state, ticket.closed_at, ticket.outcome = "closed", now, outcome
    session.add(
        SupportMessage(
            ticket_id=ticket.id,
            direction="system",
            author_id=identity.account_id,
            text=f"handed back to the bot ({outcome})",
            at=now,
        )
    )
    await _audit(session, identity, "support.handback", ticket.id, address, outcome=outcome)
    return ticket, tr(ticket.locale, HANDBACK_NOTICE)


async def assign(
    session: AsyncSession,
    identity: StaffIdentity,
    ticket_id: int,
    agent_id: int | None,
    *,
    now: datetime,
    limit: int,
    address: str | None,
) -> SupportTicket:
    """A supervisor gives a conversation to an agent (or back to the queue with None): an
    active agent, covering the resident's ward, within their limit, as for a transfer."""
    ticket = await _ticket(session, identity, ticket_id, for_update=True)
    if ticket.state not in _OPEN:
        raise Conflict(f"conversation {ticket.id} is closed")
    if agent_id is not None:
        await _can_take(session, ticket, agent_id, limit)
    ticket.agent_id = agent_id
    ticket.state = "held" if agent_id is not None else "waiting"
    ticket.held_since = now if agent_id is not None else None
    ticket.queued_at = ticket.queued_at if agent_id is not None else now
    if agent_id is not None:
        ticket.claimed_at = ticket.claimed_at or now
    session.add(
        SupportMessage(
            ticket_id=ticket.id,
            direction="system",
            author_id=identity.account_id,
            text=f"assigned to agent {agent_id}" if agent_id else "put back in the queue",
            at=now,
        )
    )
    await _audit(session, identity, "support.assign", ticket.id, address, to=agent_id)
    return ticket


def team_name(team: str, teams: Collection[str] = ()) -> str:
    """A team's name as tickets carry it; ``InvalidStaffInput`` for one that is not a name or,
    when ``teams`` are configured, not one of them."""
    name = team.strip().lower()
    if not _TEAM.match(name):
        raise InvalidStaffInput("a team is a short name: letters, digits, - and _ (e.g. zu)")
    if teams and name not in teams:
        raise InvalidStaffInput(f"team is one of {', '.join(sorted(teams))}")
    return name


async def transfer(
    session: AsyncSession,
    identity: StaffIdentity,
    ticket_id: int,
    *,
    agent_id: int | None,
    team: str | None,
    now: datetime,
    limit: int,
    teams: Collection[str] = (),
    note: str | None = None,
    address: str | None,
) -> tuple[SupportTicket, str]:
    """Pass a conversation to another agent (who holds it at once, within their limit and
    wards), or to a team (back in the queue, in its place, for that team), or both, with an
    internal ``note`` for whoever carries on. Its holder or a supervisor may. Returns the
    ticket and what the resident is told, in their language."""
    if agent_id is None and not team:
        raise InvalidStaffInput("name an agent (account_id) or a team, or both")
    name = team_name(team, teams) if team else None
    handover = _text(note) if note is not None and note.strip() else None
    ticket = await _ticket(session, identity, ticket_id, for_update=True)
    if ticket.state not in _OPEN:
        raise Conflict(f"conversation {ticket.id} is closed")
    if not identity.can(Permission.MANAGE_QUEUE):
        _holder(identity, ticket)
    before = ticket.agent_id
    if agent_id is not None:
        await _can_take(session, ticket, agent_id, limit)
        ticket.state, ticket.agent_id, ticket.held_since = "held", agent_id, now
        ticket.claimed_at = ticket.claimed_at or now
    else:
        ticket.state, ticket.agent_id, ticket.held_since = "waiting", None, None
        ticket.queued_at = now
    if name is not None:
        ticket.team = name
    to = " and ".join(
        part
        for part in (f"agent {agent_id}" if agent_id else "", f"team {name}" if name else "")
        if part
    )
    session.add(
        SupportMessage(
            ticket_id=ticket.id,
            direction="system",
            author_id=identity.account_id,
            text=f"transferred to {to}",
            at=now,
        )
    )
    if handover is not None:
        session.add(
            SupportMessage(
                ticket_id=ticket.id,
                direction="note",
                author_id=identity.account_id,
                text=handover,
                at=now,
            )
        )
    await _audit(
        session,
        identity,
        "support.transfer",
        ticket.id,
        address,
        from_agent=before,
        to_agent=agent_id,
        to_team=name,
        note=handover is not None,
    )
    return ticket, tr(ticket.locale, TRANSFER_NOTICE)


async def reopen(
    session: AsyncSession,
    identity: StaffIdentity,
    ticket_id: int,
    template: str,
    *,
    templates: Collection[str],
    now: datetime,
    address: str | None,
) -> tuple[SupportTicket, str]:
    """The holder reopens a WhatsApp conversation whose 24-hour window has closed with one of
    the approved ``templates``. Returns the ticket and the text for the template's placeholder,
    in the resident's language; the caller sends it under the template's purpose."""
    ticket = await _ticket(session, identity, ticket_id, for_update=True)
    _holder(identity, ticket)
    if ticket.channel != "whatsapp":
        raise InvalidStaffInput("only a WhatsApp conversation is reopened with a template")
    if template not in templates:
        listed = ", ".join(sorted(templates)) or "none is configured"
        raise InvalidStaffInput(f"template is one of the approved templates ({listed})")
    text = tr(ticket.locale, REOPEN_TEXT)
    session.add(
        SupportMessage(
            ticket_id=ticket.id,
            direction="agent",
            author_id=identity.account_id,
            text=f"[{template}] {text}",
            at=now,
        )
    )
    ticket.last_agent_at = now
    ticket.first_response_at = ticket.first_response_at or now
    await _audit(session, identity, "support.template", ticket.id, address, template=template)
    return ticket, text


async def _can_take(
    session: AsyncSession, ticket: SupportTicket, agent_id: int, limit: int
) -> None:
    """The agent a conversation is passed to exists, may take conversations over, covers the
    resident's ward and has room for one more."""
    account = await session.get(StaffAccount, agent_id)
    known = {role.value for role in Role}
    roles = [Role(r) for r in (account.roles if account else []) if r in known]
    if account is None or not account.active or Permission.TAKE_OVER not in permissions_for(roles):
        raise InvalidStaffInput(f"account {agent_id} is not an active agent")
    if ticket.agent_id == agent_id:
        raise Conflict(f"conversation {ticket.id} is theirs already")
    if account.wards is not None and ticket.ward not in account.wards:
        raise Conflict(f"the resident's ward is not one of agent {agent_id}'s wards")
    if await held_by(session, agent_id) >= limit:
        raise Conflict(f"agent {agent_id} already holds {limit} conversations")


@dataclass(frozen=True, slots=True)
class TicketView:
    ticket: SupportTicket
    messages: Sequence[SupportMessage]
    # The resident's reports: reference, service, status, when.
    reports: list[dict[str, object]]


async def view(
    session: AsyncSession, identity: StaffIdentity, ticket_id: int, *, address: str | None
) -> TicketView:
    """The conversation with its transcript and the resident's reports (a view of personal
    data: audited)."""
    ticket = await _ticket(session, identity, ticket_id)
    messages = (
        await session.scalars(
            select(SupportMessage)
            .where(SupportMessage.ticket_id == ticket.id)
            .order_by(SupportMessage.at, SupportMessage.id)
        )
    ).all()
    reports: list[dict[str, object]] = []
    if ticket.resident_id is not None:
        rows = (
            await session.scalars(
                select(Submission)
                .where(Submission.resident_id == ticket.resident_id)
                .order_by(Submission.id.desc())
                .limit(20)
            )
        ).all()
        reports = [
            {
                "reference": s.reference,
                "service_code": s.service_code,
                "status": s.status,
                "created_at": s.created_at,
            }
            for s in rows
        ]
    await _audit(session, identity, "support.view", ticket.id, address)
    return TicketView(ticket, list(messages), reports)


async def _audit(
    session: AsyncSession,
    identity: StaffIdentity,
    action: str,
    ticket_id: int,
    address: str | None,
    **details: object,
) -> None:
    await audit.record(
        session,
        actor=identity.actor,
        action=action,
        target=f"ticket:{ticket_id}",
        address=address,
        details=details or None,
    )
