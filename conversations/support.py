"""Talking to a person: the resident's side of support takeover.

AGENT ("human", "speak to someone", "praat met iemand", "ngifuna umuntu", "ndifuna umntu")
opens a ``SupportTicket``: the resident is told in their language that a person will answer,
their place in the queue and, from the recent waits, how long it may take. From then until the
ticket closes, the bot is silent: each message the resident sends is added to the ticket's
transcript for the agent (``staff.support``). STOP still comes first, ends the takeover and tells
the agent (a system line in the transcript).

Outside office hours (``conversations.office_hours``) the resident is told when someone will be
back, in their language, and that their messages stay in the queue. A form step that says a
person is needed (``Handoff``, a live wire down) opens an urgent ticket, for the form's team.

On USSD (``CALLBACK_CHANNELS``) the screen closes and cannot be reopened by us: AGENT there is a
call-back request (reason ``callback``, a system line for the agent), and the resident is told
that a person will contact them by SMS.

Which conversations are with a person is read from the database at most every ``refresh``
per process (one small query, shared by every turn that finds the copy stale:
``conversations.periodic_read``), so a claim or a handback made by another process is seen within
a second; a ticket this process opened is known at once.

Example::

    desk = SupportDesk(OfficeHours.parse("mon-fri 08:00-16:30"))
    ticket = await desk.ticket_of(turn)
    if ticket is not None and await desk.take(turn, ticket):
        return                                 # the agent answers, not the bot
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.office_hours import OfficeHours
from conversations.periodic_read import PeriodicRead
from conversations.subscriptions import latest_wards
from conversations.turn_context import Turn
from forms_runtime.effects import Notice
from forms_runtime.i18n import N_, tr
from storage.models import SupportMessage, SupportTicket
from storage.support_queue import expected_wait_minutes, queue_position

__all__ = ["CALLBACK_CHANNELS", "OPEN_STATES", "URGENT", "SupportDesk"]

OPEN_STATES = ("waiting", "held")
# The priority of a ticket a form opened (a danger): ahead of everyone who asked.
URGENT = 10
_QUEUED = N_("A person will answer you here. You are number {position} in the queue.")
_QUEUED_WAIT = N_(
    "A person will answer you here. You are number {position} in the queue; the wait is about {minutes} minutes."
)
_CLOSED = N_(
    "Our staff are not at work now. Someone will be back on {when}. Leave your message here: it stays in the queue for them."
)
# Channels where the resident cannot wait in a conversation (a USSD screen closes within
# minutes and cannot be opened from our side): asking for a person is a request to be called
# back, and whoever takes it answers by SMS (the channel's follow-ups).
CALLBACK_CHANNELS = frozenset({"ussd"})
_CALLBACK_QUEUED = N_("A person will contact you by SMS. You are number {position} in the queue.")
_CALLBACK_QUEUED_WAIT = N_(
    "A person will contact you by SMS. You are number {position} in the queue; the wait is about {minutes} minutes."
)
_CALLBACK_CLOSED = N_(
    "Our staff are not at work now. Someone will contact you by SMS after {when}."
)
_CALLBACK_NOTE = (
    "Call-back request from a USSD session: the resident cannot write here. Your replies "
    "reach them by SMS."
)


class SupportDesk:
    def __init__(
        self, office_hours: OfficeHours | None = None, *, refresh: timedelta = timedelta(seconds=1)
    ) -> None:
        # None: staff answer at any hour (a turn loop built without settings, in tests).
        self.office_hours = office_hours or OfficeHours.parse("always")
        self.refresh = refresh
        # (channel, address) -> open ticket; this process's own changes are made in place.
        self._open: PeriodicRead[dict[tuple[str, str], int]] = PeriodicRead(
            every=refresh, initial={}
        )

    async def ticket_of(self, turn: Turn) -> int | None:
        """The open ticket of this conversation, if a person has it (or it waits for one)."""
        held = await turn.refreshed(self._open, _open_tickets)
        return held.get((turn.message.channel, turn.message.address))

    async def take(self, turn: Turn, ticket_id: int) -> bool:
        """Add the resident's message to the ticket; ``False`` if it closed meanwhile (the bot
        answers then)."""
        session = await turn.sql()
        still_open = await session.execute(
            update(SupportTicket)
            .where(SupportTicket.id == ticket_id, SupportTicket.state.in_(OPEN_STATES))
            .values(last_resident_at=turn.now)
        )
        if not getattr(still_open, "rowcount", 0):
            self._open.value.pop((turn.message.channel, turn.message.address), None)
            return False
        session.add(
            SupportMessage(
                ticket_id=ticket_id, direction="resident", text=_words(turn), at=turn.now
            )
        )
        return True

    async def request(
        self,
        turn: Turn,
        *,
        reason: str = "asked",
        priority: int = 0,
        team: str | None = None,
        note: str | None = None,
    ) -> None:
        """Queue the conversation for a person (once: asking again says where it stands).
        ``note`` is a system line for the agent (why a form asked for a person)."""
        session = await turn.sql()
        message = turn.message
        callback = message.channel in CALLBACK_CHANNELS
        if callback and reason == "asked":
            reason = "callback"
        ticket_id = await self.ticket_of(turn)
        opened = ticket_id is None
        if ticket_id is None:
            wards = await latest_wards(session, turn.resident_id)
            # The form they were in, or about to open (the consent question comes first).
            form = turn.envelope.get("form") or {}
            pending = turn.envelope.get("pending") or {}
            ticket = SupportTicket(
                resident_id=turn.resident_id,
                channel=message.channel,
                address=message.address,
                locale=turn.locale,
                reason=reason,
                topic=form.get("form") or pending.get("form_id"),
                team=team,
                ward=wards[0] if wards else None,
                priority=priority,
                state="waiting",
                created_at=turn.now,
                queued_at=turn.now,
                last_resident_at=turn.now,
            )
            session.add(ticket)
            await session.flush()
            ticket_id = ticket.id
            self._open.value[(message.channel, message.address)] = ticket_id
        for line in (note, _CALLBACK_NOTE if callback and opened else None):
            if line:
                session.add(
                    SupportMessage(ticket_id=ticket_id, direction="system", text=line, at=turn.now)
                )
        queued = await session.get(SupportTicket, ticket_id)
        assert queued is not None
        await self._tell_place(turn, session, queued)

    async def where_they_stand(self, turn: Turn, ticket_id: int) -> None:
        """A resident still waiting asks for a person again: their place and the wait now. Once
        an agent holds the conversation, the agent reads the message and answers."""
        session = await turn.sql()
        ticket = await session.get(SupportTicket, ticket_id)
        if ticket is not None and ticket.state == "waiting":
            await self._tell_place(turn, session, ticket)

    async def _tell_place(self, turn: Turn, session: AsyncSession, ticket: SupportTicket) -> None:
        position = await queue_position(session, ticket)
        minutes = await expected_wait_minutes(session) if ticket.state == "waiting" else None
        callback = ticket.channel in CALLBACK_CHANNELS
        when_back = None
        if not self.office_hours.is_open(turn.now):
            when_back = self.office_hours.when_back(turn.now, turn.locale)
        queued, queued_wait, closed = (
            (_CALLBACK_QUEUED, _CALLBACK_QUEUED_WAIT, _CALLBACK_CLOSED)
            if callback
            else (_QUEUED, _QUEUED_WAIT, _CLOSED)
        )
        if minutes is None or when_back is not None:
            turn.say(Notice(tr(turn.locale, queued, position=position)))
            # Told no wait: the support sweep has no figure to say a longer one against.
            ticket.told_wait_minutes = None
        else:
            turn.say(Notice(tr(turn.locale, queued_wait, position=position, minutes=minutes)))
            ticket.told_wait_minutes = minutes
        if when_back is not None:
            turn.say(Notice(tr(turn.locale, closed, when=when_back)))

    async def end_for_opt_out(self, turn: Turn) -> None:
        """STOP during a takeover: the ticket closes and the agent is told."""
        ticket_id = await self.ticket_of(turn)
        if ticket_id is None:
            return
        session = await turn.sql()
        await session.execute(
            update(SupportTicket)
            .where(SupportTicket.id == ticket_id, SupportTicket.state.in_(OPEN_STATES))
            .values(state="closed", closed_at=turn.now, outcome="opted_out")
        )
        session.add(
            SupportMessage(
                ticket_id=ticket_id,
                direction="system",
                text="The resident sent STOP: nothing more can be sent to them.",
                at=turn.now,
            )
        )
        self._open.value.pop((turn.message.channel, turn.message.address), None)


async def _open_tickets(session: AsyncSession) -> dict[tuple[str, str], int]:
    rows = await session.execute(
        select(SupportTicket.id, SupportTicket.channel, SupportTicket.address).where(
            SupportTicket.state.in_(OPEN_STATES), SupportTicket.address.is_not(None)
        )
    )
    return {(channel, str(address)): ticket for ticket, channel, address in rows}


def _words(turn: Turn) -> str:
    message = turn.message
    if message.text:
        return message.text
    if message.location is not None:
        return f"[location {message.location.lat:.5f}, {message.location.lon:.5f}]"
    if message.media:
        return f"[{len(message.media)} photo(s)]"
    return f"[{message.kind.value}]"
