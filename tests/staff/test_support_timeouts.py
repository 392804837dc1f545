"""The three support timeouts on a settable clock (never minutes of sleeping), on SQLite and
PostgreSQL: each fires once, at its time, says so to the resident in their language, leaves a
line in the transcript and an audit row by the system; several sweepers at once act once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversations.office_hours import OfficeHours
from forms_runtime.i18n import tr
from staff import support
from staff.support_timeouts import (
    AGENT_SILENT_NOTICE,
    LONGER_WAIT_NOTICE,
    RESIDENT_SILENT_NOTICE,
    UNCLAIMED_NOTICE,
    SupportTimeouts,
)
from storage.models import AuditLog, SupportMessage, SupportTicket
from tests.staff.conftest import Clock
from tests.staff.support_tickets import agents, queued

TIMEOUTS = SupportTimeouts(
    unclaimed=timedelta(minutes=15),
    agent_silent=timedelta(minutes=10),
    resident_silent=timedelta(minutes=30),
)
Sessions = async_sessionmaker[AsyncSession]
# Logic on top of the SQL the other tests run on both databases: SQLite alone keeps them quick.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _sweep(
    sessions: Sessions, now: datetime, timeouts: SupportTimeouts = TIMEOUTS
) -> list[tuple[int, str]]:
    async with sessions() as session, session.begin():
        return [(t.id, text) for t, text in await timeouts.sweep(session, now=now)]


async def _ticket(sessions: Sessions, ticket_id: int) -> SupportTicket:
    async with sessions() as session:
        found = await session.get(SupportTicket, ticket_id)
        assert found is not None
        return found


async def _system_lines(sessions: Sessions, ticket_id: int) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(SupportMessage.text)
            .where(SupportMessage.ticket_id == ticket_id, SupportMessage.direction == "system")
            .order_by(SupportMessage.id)
        )
        return [str(t) for t in rows.all()]


async def _audited(sessions: Sessions) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(AuditLog.actor, AuditLog.action)
            .where(AuditLog.action.like("support.timeout.%"))
            .order_by(AuditLog.id)
        )
        return [(str(a), str(b)) for a, b in rows.all()]


async def test_unclaimed_too_long_is_told_once(sessions: Sessions, clock: Clock) -> None:
    (ticket_id,) = await queued(sessions, 1, clock.now, locale="zu")
    assert await _sweep(sessions, clock.now + timedelta(minutes=14, seconds=59)) == []
    told = await _sweep(sessions, clock.now + timedelta(minutes=15))
    assert told == [
        (
            ticket_id,
            "Bonke abasebenzi basamatasa, uxolo ngokulinda. Uzogcina indawo yakho emugqeni. Shiya umlayezo wakho lapha, kanye nenombolo yocingo uma ufuna sikushayele emuva.",
        )
    ]
    assert await _sweep(sessions, clock.now + timedelta(hours=2)) == []
    ticket = await _ticket(sessions, ticket_id)
    assert ticket.state == "waiting" and ticket.unclaimed_told_at is not None
    assert await _system_lines(sessions, ticket_id) == ["nobody has taken it yet"]
    assert await _audited(sessions) == [("system", "support.timeout.unclaimed")]


@SQLITE_ONLY
async def test_unclaimed_counts_only_open_office_time(sessions: Sessions) -> None:
    hours = OfficeHours.parse("mon-fri 08:00-16:30")
    timeouts = SupportTimeouts(unclaimed=timedelta(minutes=15), open_since=hours.open_since)
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
    await queued(sessions, 1, saturday)
    assert await _sweep(sessions, saturday + timedelta(hours=5), timeouts) == []
    monday_opening = datetime(2026, 3, 9, 6, 0, tzinfo=UTC)  # 08:00 in Cape Town
    assert await _sweep(sessions, monday_opening + timedelta(minutes=14), timeouts) == []
    assert len(await _sweep(sessions, monday_opening + timedelta(minutes=15), timeouts)) == 1


async def test_an_agent_silent_too_long_puts_it_back_in_the_queue(
    sessions: Sessions, clock: Clock
) -> None:
    (agent,) = await agents(sessions, 1)
    (ticket_id,) = await queued(sessions, 1, clock.now, locale="af")
    async with sessions() as session, session.begin():
        await support.claim(session, agent, ticket_id, now=clock.now, limit=5, address=None)
    assert await _sweep(sessions, clock.now + timedelta(minutes=9)) == []
    (told,) = await _sweep(sessions, clock.now + timedelta(minutes=10))
    assert told[1].startswith("Jammer vir die wag.")
    ticket = await _ticket(sessions, ticket_id)
    assert (ticket.state, ticket.agent_id, ticket.held_since) == ("waiting", None, None)
    assert ticket.claimed_at == clock.now, "the first claim is kept for the wait figures"
    assert await _audited(sessions) == [("system", "support.timeout.agent_silent")]


@SQLITE_ONLY
async def test_put_back_in_the_queue_the_unclaimed_clock_starts_again(
    sessions: Sessions, clock: Clock
) -> None:
    (agent,) = await agents(sessions, 1)
    (ticket_id,) = await queued(sessions, 1, clock.now)
    start = clock.now
    async with sessions() as session, session.begin():
        await support.claim(session, agent, ticket_id, now=start, limit=5, address=None)
    returned = start + timedelta(minutes=20)
    assert [t for _, t in await _sweep(sessions, returned)] == [AGENT_SILENT_NOTICE]
    # Not "everyone is busy" on the heels of "back in the queue": 15 minutes from the return.
    assert await _sweep(sessions, returned + timedelta(minutes=14)) == []
    assert [t for _, t in await _sweep(sessions, returned + timedelta(minutes=15))] == [
        UNCLAIMED_NOTICE
    ]


async def test_the_agent_silent_clock_starts_at_the_residents_unanswered_message(
    sessions: Sessions, clock: Clock
) -> None:
    (agent,) = await agents(sessions, 1)
    (ticket_id,) = await queued(sessions, 1, clock.now)
    start = clock.now
    async with sessions() as session, session.begin():
        await support.claim(session, agent, ticket_id, now=start, limit=5, address=None)
        ticket = await support.reply(
            session, agent, ticket_id, "Hello", now=start + timedelta(minutes=5), address=None
        )
        # As conversations.support takes a resident's message: the line and the time.
        for minute, words in ((8, "it is still off"), (12, "hello?")):
            at = start + timedelta(minutes=minute)
            session.add(
                SupportMessage(ticket_id=ticket_id, direction="resident", text=words, at=at)
            )
            ticket.last_resident_at = at
    # Owed since the first unanswered message (minute 8), not the latest (minute 12).
    assert await _sweep(sessions, start + timedelta(minutes=17)) == []
    (told,) = await _sweep(sessions, start + timedelta(minutes=18))
    assert told[1] == AGENT_SILENT_NOTICE


async def test_a_resident_silent_too_long_closes_it_and_the_bot_answers_again(
    sessions: Sessions, clock: Clock
) -> None:
    (agent,) = await agents(sessions, 1)
    (ticket_id,) = await queued(sessions, 1, clock.now)
    start = clock.now
    async with sessions() as session, session.begin():
        await support.claim(session, agent, ticket_id, now=start, limit=5, address=None)
        await support.reply(
            session,
            agent,
            ticket_id,
            "Which street?",
            now=start + timedelta(minutes=1),
            address=None,
        )
    assert await _sweep(sessions, start + timedelta(minutes=30)) == []
    (told,) = await _sweep(sessions, start + timedelta(minutes=31))
    assert told[1] == RESIDENT_SILENT_NOTICE
    ticket = await _ticket(sessions, ticket_id)
    assert (ticket.state, ticket.outcome) == ("closed", "resident_silent")
    assert "the resident did not answer" in (await _system_lines(sessions, ticket_id))[-1]
    assert await _sweep(sessions, start + timedelta(hours=3)) == []


@SQLITE_ONLY
async def test_a_resident_who_answered_is_not_closed(sessions: Sessions, clock: Clock) -> None:
    (agent,) = await agents(sessions, 1)
    (ticket_id,) = await queued(sessions, 1, clock.now)
    start = clock.now
    async with sessions() as session, session.begin():
        await support.claim(session, agent, ticket_id, now=start, limit=5, address=None)
        ticket = await support.reply(
            session,
            agent,
            ticket_id,
            "Which street?",
            now=start + timedelta(minutes=1),
            address=None,
        )
        ticket.last_resident_at = start + timedelta(minutes=2)
        session.add(
            SupportMessage(
                ticket_id=ticket_id,
                direction="resident",
                text="Main Rd",
                at=ticket.last_resident_at,
            )
        )
    # The agent owes the answer: the agent-silent timeout, not the resident's, is the one due.
    told = await _sweep(sessions, start + timedelta(minutes=40))
    assert [text for _, text in told] == [AGENT_SILENT_NOTICE]


@SQLITE_ONLY
async def test_timeouts_that_are_off_never_fire(sessions: Sessions, clock: Clock) -> None:
    await queued(sessions, 3, clock.now)
    assert await _sweep(sessions, clock.now + timedelta(days=3), SupportTimeouts()) == []


async def test_several_sweepers_at_once_act_once(sessions: Sessions, clock: Clock) -> None:
    ids = await queued(sessions, 30, clock.now)
    later = clock.now + timedelta(minutes=20)
    results = await asyncio.gather(*(_sweep(sessions, later) for _ in range(4)))
    told = sorted(ticket_id for told in results for ticket_id, _ in told)
    assert told == sorted(ids), "each resident told once, by one sweeper"
    assert len(await _audited(sessions)) == 30


async def _answered_after(sessions: Sessions, at: datetime, waits: list[int]) -> None:
    """Conversations claimed by ``at`` after waiting ``waits`` minutes: the expected wait."""
    async with sessions() as session, session.begin():
        session.add_all(
            SupportTicket(
                channel="sms",
                state="closed",
                created_at=at - timedelta(minutes=wait),
                claimed_at=at,
                closed_at=at,
            )
            for wait in waits
        )


async def test_a_longer_wait_is_told_again(sessions: Sessions, clock: Clock) -> None:
    await _answered_after(sessions, clock.now, [10, 10, 10])
    ahead, ticket_id, told_none = await queued(sessions, 3, clock.now, locale="zu")
    async with sessions() as session, session.begin():
        for waiting_id, came in ((ahead, 2), (ticket_id, 1)):
            found = await session.get(SupportTicket, waiting_id)
            assert found is not None
            found.told_wait_minutes = 10
            found.created_at = clock.now - timedelta(seconds=came)
    assert await _sweep(sessions, clock.now) == [], "the wait they were told still holds"
    # Slower claims since: the median is 14 minutes, not yet 5 more than the 10 they were told.
    await _answered_after(sessions, clock.now + timedelta(minutes=1), [14, 14, 14, 14])
    assert await _sweep(sessions, clock.now + timedelta(minutes=1)) == []
    later = clock.now + timedelta(minutes=2)
    await _answered_after(sessions, later, [20] * 8)
    told = await _sweep(sessions, later)
    assert told == [
        (ahead, tr("zu", LONGER_WAIT_NOTICE, position=1, minutes=20)),
        (ticket_id, tr("zu", LONGER_WAIT_NOTICE, position=2, minutes=20)),
    ]
    assert told[1][1] != LONGER_WAIT_NOTICE.format(position=2, minutes=20), "in isiZulu"
    assert "20" in told[1][1] and "2" in told[1][1]
    assert await _sweep(sessions, later + timedelta(minutes=1)) == [], "said once per growth"
    ticket = await _ticket(sessions, ticket_id)
    assert ticket.told_wait_minutes == 20 and ticket.state == "waiting"
    assert await _system_lines(sessions, ticket_id) == [
        "told the wait is longer: about 20 minutes (was 10)"
    ]
    assert (await _ticket(sessions, told_none)).told_wait_minutes is None
    async with sessions() as session:
        actions = (
            await session.scalars(
                select(AuditLog.action).where(AuditLog.action == "support.wait_longer")
            )
        ).all()
    assert len(actions) == 2


@SQLITE_ONLY
async def test_a_longer_wait_is_not_told_while_the_office_is_closed(sessions: Sessions) -> None:
    hours = OfficeHours.parse("mon-fri 08:00-16:30")
    timeouts = SupportTimeouts(open_since=hours.open_since)
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
    (ticket_id,) = await queued(sessions, 1, saturday)
    async with sessions() as session, session.begin():
        found = await session.get(SupportTicket, ticket_id)
        assert found is not None
        found.told_wait_minutes = 5
    await _answered_after(sessions, saturday, [60])
    assert await _sweep(sessions, saturday + timedelta(hours=1), timeouts) == []
    monday_opening = datetime(2026, 3, 9, 6, 0, tzinfo=UTC)
    assert len(await _sweep(sessions, monday_opening, timeouts)) == 1
    off = SupportTimeouts(open_since=hours.open_since, longer_wait=False)
    await _answered_after(sessions, monday_opening, [200, 200])
    assert await _sweep(sessions, monday_opening, off) == []


@pytest.mark.parametrize(
    "notice", [UNCLAIMED_NOTICE, AGENT_SILENT_NOTICE, RESIDENT_SILENT_NOTICE, LONGER_WAIT_NOTICE]
)
def test_every_notice_is_translated(notice: str) -> None:
    from forms_runtime.i18n import has_translation

    assert all(has_translation(locale, notice) for locale in ("af", "zu", "xh"))
