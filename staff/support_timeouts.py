"""The three support timeouts, each told to the resident in their language and audited as the
system's action:

* **unclaimed**: a conversation waits longer than ``unclaimed`` of open office time: the
  resident is told everyone is busy, that they keep their place, and may leave a message and a
  number to be called back on (said once each time it enters the queue);
* **agent silent**: the agent holding it owes the resident an answer for longer than
  ``agent_silent`` (since they took it, or since the resident's first message after the agent
  last spoke): back to the queue, in its place, for the next free agent;
* **resident silent**: the agent spoke last, longer than ``resident_silent`` ago: closed
  (``resident_silent``) with a note in the transcript, and the bot answers again.

The same sweep tells a waiting resident again when the expected wait they were told has grown
(by ``LONGER_BY``: at least 5 minutes and a quarter), with their place in the queue now; only
while the office is open (when it is closed they were told when someone will be back).

``sweep`` runs in the caller's transaction and returns what to tell whom; the caller queues
those messages in the same transaction (``bot.support_outbox``), so a change and its message
commit together. Several processes may sweep at once: every change is a conditional UPDATE on
the values the sweep read, so exactly one process makes it (and tells the resident); the others
find nothing to do.

Example::

    timeouts = SupportTimeouts(unclaimed=timedelta(minutes=15), open_since=hours.open_since)
    async with sessionmaker() as session, session.begin():
        for ticket, text in await timeouts.sweep(session, now=utc_now()):
            await tell_resident(session, ticket, text, now=now)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement

from forms_runtime.i18n import N_, tr
from staff import audit
from storage.models import SupportMessage, SupportTicket
from storage.support_queue import expected_wait_minutes, queue_position

__all__ = [
    "AGENT_SILENT_NOTICE",
    "LONGER_WAIT_NOTICE",
    "RESIDENT_SILENT_NOTICE",
    "UNCLAIMED_NOTICE",
    "SupportTimeouts",
]

UNCLAIMED_NOTICE = N_(
    "Everyone is still busy, sorry for the wait. You keep your place in the queue. Leave your message here, and a phone number if you want us to call you back."
)
AGENT_SILENT_NOTICE = N_(
    "Sorry for the wait. Your conversation is back in the queue and the next free person will answer you."
)
RESIDENT_SILENT_NOTICE = N_(
    "We have not heard from you, so this conversation with a person is closed. You are talking to the city's assistant again: send MENU to start, or AGENT for a person."
)
LONGER_WAIT_NOTICE = N_(
    "Sorry, the wait is longer now. You are number {position} in the queue; the wait is about {minutes} minutes."
)
# Audit actor of what the timeouts do.
SYSTEM = "system"
# At most this many tickets of each kind per sweep (the rest at the next).
_BATCH = 200

Told = tuple[SupportTicket, str]


def longer_by(told: int) -> int:
    """How much longer than ``told`` minutes the expected wait must be to be said again: small
    changes of a median are noise, and a resident told every minute would stop reading."""
    return max(5, told // 4)


def _always_open(now: datetime) -> datetime | None:
    return datetime.min.replace(tzinfo=now.tzinfo)


@dataclass(frozen=True, slots=True)
class SupportTimeouts:
    """Each timeout is off when None. ``open_since(now)``: when the office opened, None while
    it is closed (``conversations.office_hours.OfficeHours.open_since``)."""

    unclaimed: timedelta | None = None
    agent_silent: timedelta | None = None
    resident_silent: timedelta | None = None
    open_since: Callable[[datetime], datetime | None] = _always_open
    # Tell a waiting resident again when the expected wait grows (not a timeout: on by default).
    longer_wait: bool = True

    async def sweep(self, session: AsyncSession, *, now: datetime) -> list[Told]:
        told: list[Told] = []
        if self.longer_wait:
            told += await self._longer_wait(session, now)
        if self.unclaimed is not None:
            told += await self._unclaimed(session, now, self.unclaimed)
        if self.agent_silent is not None:
            told += await self._agent_silent(session, now, self.agent_silent)
        if self.resident_silent is not None:
            told += await self._resident_silent(session, now, self.resident_silent)
        return told

    async def _longer_wait(self, session: AsyncSession, now: datetime) -> list[Told]:
        if self.open_since(now) is None:
            return []
        minutes = await expected_wait_minutes(session)
        if minutes is None:
            return []
        rows = await session.scalars(
            select(SupportTicket)
            .where(
                SupportTicket.state == "waiting",
                # The smallest growth that counts (``longer_by``) narrows it in SQL.
                SupportTicket.told_wait_minutes <= minutes - longer_by(0),
            )
            .order_by(SupportTicket.id)
            .limit(_BATCH)
        )
        told: list[Told] = []
        for ticket in rows.all():
            before = ticket.told_wait_minutes
            if before is None or minutes < before + longer_by(before):
                continue
            won = await _guarded(
                session,
                ticket,
                SupportTicket.state == "waiting",
                SupportTicket.told_wait_minutes == before,
                told_wait_minutes=minutes,
            )
            if won:
                position = await queue_position(session, ticket)
                await _record(
                    session,
                    ticket,
                    "support.wait_longer",
                    f"told the wait is longer: about {minutes} minutes (was {before})",
                    now,
                )
                text = tr(ticket.locale, LONGER_WAIT_NOTICE, position=position, minutes=minutes)
                told.append((ticket, text))
        return told

    async def _unclaimed(
        self, session: AsyncSession, now: datetime, after: timedelta
    ) -> list[Told]:
        opened = self.open_since(now)
        if opened is None:
            return []  # closed: nobody is expected to claim anything, and they were told so
        # Waiting counts from the opening when the ticket came in while the office was closed.
        since = now - after
        if opened > since:
            return []
        queued = func.coalesce(SupportTicket.queued_at, SupportTicket.created_at)
        # Not told since it last entered the queue (put back by a timeout or a transfer, it may be).
        untold = or_(
            SupportTicket.unclaimed_told_at.is_(None), SupportTicket.unclaimed_told_at < queued
        )
        rows = await session.scalars(
            select(SupportTicket)
            .where(SupportTicket.state == "waiting", untold, queued <= since)
            .order_by(SupportTicket.id)
            .limit(_BATCH)
        )
        told: list[Told] = []
        for ticket in rows.all():
            won = await _guarded(
                session,
                ticket,
                SupportTicket.state == "waiting",
                untold,
                unclaimed_told_at=now,
            )
            if won:
                await _record(
                    session, ticket, "support.timeout.unclaimed", "nobody has taken it yet", now
                )
                told.append((ticket, tr(ticket.locale, UNCLAIMED_NOTICE)))
        return told

    async def _agent_silent(
        self, session: AsyncSession, now: datetime, after: timedelta
    ) -> list[Told]:
        """Held conversations where the resident has waited on the agent since before
        ``now - after``: since the agent took it (and has said nothing since), or since the
        resident's first message after the agent last spoke."""
        since = now - after
        rows = (
            await session.scalars(
                select(SupportTicket)
                .where(
                    SupportTicket.state == "held",
                    SupportTicket.held_since <= since,
                    # The agent owes an answer: silent since taking it, or the resident wrote last.
                    or_(
                        SupportTicket.last_agent_at.is_(None),
                        SupportTicket.last_agent_at < SupportTicket.held_since,
                        SupportTicket.last_resident_at > SupportTicket.last_agent_at,
                    ),
                )
                .order_by(SupportTicket.id)
                .limit(_BATCH)
            )
        ).all()
        told: list[Told] = []
        for ticket in rows:
            held_since = ticket.held_since
            assert held_since is not None
            spoke = ticket.last_agent_at
            # Owed since they took it, if they have said nothing since.
            owed: datetime | None = held_since
            if spoke is not None and spoke >= held_since:
                owed = await session.scalar(
                    select(func.min(SupportMessage.at)).where(
                        SupportMessage.ticket_id == ticket.id,
                        SupportMessage.direction == "resident",
                        SupportMessage.at > spoke,
                    )
                )
                heard = ticket.last_resident_at
                if owed is None and heard is not None and heard > spoke:
                    owed = heard  # a message erased since (DELETE MY DATA) still counts
            if owed is None or owed > since:
                continue
            agent = ticket.agent_id
            won = await _guarded(
                session,
                ticket,
                SupportTicket.state == "held",
                SupportTicket.agent_id == agent,
                SupportTicket.held_since == held_since,
                SupportTicket.last_agent_at.is_not_distinct_from(spoke),
                state="waiting",
                agent_id=None,
                held_since=None,
                queued_at=now,
            )
            if won:
                await _record(
                    session,
                    ticket,
                    "support.timeout.agent_silent",
                    "back to the queue: no answer",
                    now,
                    agent,
                )
                told.append((ticket, tr(ticket.locale, AGENT_SILENT_NOTICE)))
        return told

    async def _resident_silent(
        self, session: AsyncSession, now: datetime, after: timedelta
    ) -> list[Told]:
        since = now - after
        rows = (
            await session.scalars(
                select(SupportTicket)
                .where(
                    SupportTicket.state == "held",
                    SupportTicket.last_agent_at <= since,
                    SupportTicket.last_agent_at >= SupportTicket.held_since,
                )
                .order_by(SupportTicket.id)
                .limit(_BATCH)
            )
        ).all()
        told: list[Told] = []
        for ticket in rows:
            spoke = ticket.last_agent_at
            heard = ticket.last_resident_at
            if spoke is None or (heard is not None and heard > spoke):
                continue  # the resident answered: the agent's turn
            won = await _guarded(
                session,
                ticket,
                SupportTicket.state == "held",
                SupportTicket.last_agent_at == spoke,
                SupportTicket.last_resident_at.is_not_distinct_from(heard),
                state="closed",
                closed_at=now,
                outcome="resident_silent",
            )
            if won:
                await _record(
                    session,
                    ticket,
                    "support.timeout.resident_silent",
                    "closed: the resident did not answer; the bot answers again",
                    now,
                    ticket.agent_id,
                )
                told.append((ticket, tr(ticket.locale, RESIDENT_SILENT_NOTICE)))
        return told


async def _guarded(
    session: AsyncSession,
    ticket: SupportTicket,
    *still: ColumnElement[bool],
    **values: object,
) -> bool:
    """Change ``ticket`` only if it is as this sweep read it: of several processes sweeping at
    once, one wins; an agent who replied meanwhile wins over the timeout."""
    changed = await session.execute(
        update(SupportTicket)
        .where(SupportTicket.id == ticket.id, *still)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if not getattr(changed, "rowcount", 0):
        return False
    for name, value in values.items():
        # What the database now holds, without making the object dirty (no second UPDATE).
        set_committed_value(ticket, name, value)
    return True


async def _record(
    session: AsyncSession,
    ticket: SupportTicket,
    action: str,
    line: str,
    now: datetime,
    agent_id: int | None = None,
) -> None:
    session.add(SupportMessage(ticket_id=ticket.id, direction="system", text=line, at=now))
    await audit.record(
        session,
        actor=SYSTEM,
        action=action,
        target=f"ticket:{ticket.id}",
        details={"agent_id": agent_id} if agent_id is not None else None,
    )
