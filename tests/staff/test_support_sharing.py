"""100 queued conversations shared by 5 agents clicking at once, on SQLite and PostgreSQL: every
conversation is claimed exactly once, nobody holds more than the limit, losers are told; then a
transfer to a team and to another agent keeps the same rules."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from staff import support
from staff.accounts import NewAccount, create_account
from staff.errors import Conflict, InvalidStaffInput
from staff.identity import StaffIdentity
from storage.models import AuditLog, SupportMessage, SupportTicket
from tests.staff.conftest import FAST_HASHER, Clock
from tests.staff.support_tickets import agents, queued

Sessions = async_sessionmaker[AsyncSession]
LIMIT = 25


async def _take_until_full(
    sessions: Sessions, agent: StaffIdentity, clock: Clock, seed: int
) -> tuple[list[int], int]:
    """Like a person at the console: look at the queue, click one of the first few, again."""
    rng = random.Random(seed)
    won: list[int] = []
    lost = 0
    while len(won) < LIMIT:
        async with sessions() as session:
            waiting = [t.id for t in await support.queue(session, agent, limit=10)]
        if not waiting:
            break
        pick = rng.choice(waiting[:3])
        try:
            async with sessions() as session, session.begin():
                await support.claim(
                    session, agent, pick, now=clock.now, limit=LIMIT, address="10.0.0.9"
                )
            won.append(pick)
        except Conflict:
            lost += 1
    return won, lost


async def test_100_conversations_shared_by_5_agents(sessions: Sessions, clock: Clock) -> None:
    team = await agents(sessions, 5)
    ids = await queued(sessions, 100, clock.now)
    results = await asyncio.gather(
        *(_take_until_full(sessions, agent, clock, seed) for seed, agent in enumerate(team))
    )
    claimed = [ticket for won, _ in results for ticket in won]
    assert sorted(claimed) == sorted(ids), "each conversation claimed exactly once"
    assert all(len(won) <= LIMIT for won, _ in results)
    assert sum(lost for _, lost in results) > 0, "the agents did race for the same ones"
    async with sessions() as session:
        held = Counter(
            (
                await session.scalars(
                    select(SupportTicket.agent_id).where(SupportTicket.state == "held")
                )
            ).all()
        )
        claims = await session.scalar(
            select(func.count()).where(AuditLog.action == "support.claim")
        )
        taken_lines = await session.scalar(
            select(func.count()).where(SupportMessage.text == "taken by an agent")
        )
    assert sum(held.values()) == 100 and max(held.values()) <= LIMIT
    assert claims == 100 and taken_lines == 100


async def test_one_agent_clicking_in_two_tabs_stays_within_the_limit(
    sessions: Sessions, clock: Clock
) -> None:
    """The limit is counted and the claim made in one transaction; two of one agent's claims
    at once must not both count the same held conversations and both win."""
    (agent,) = await agents(sessions, 1)
    first, *others = await queued(sessions, 6, clock.now)
    async with sessions() as session, session.begin():
        await support.claim(session, agent, first, now=clock.now, limit=2, address=None)

    async def click(ticket_id: int) -> bool:
        try:
            async with sessions() as session, session.begin():
                await support.claim(session, agent, ticket_id, now=clock.now, limit=2, address=None)
        except Conflict as refused:
            assert "you already hold 2" in str(refused)
            return False
        return True

    won = await asyncio.gather(*(click(ticket_id) for ticket_id in others))
    assert sum(won) == 1
    async with sessions() as session:
        held = await session.scalar(
            select(func.count()).where(
                SupportTicket.agent_id == agent.account_id, SupportTicket.state == "held"
            )
        )
    assert held == 2


async def test_a_supervisor_assigns_only_to_an_agent_with_room(
    sessions: Sessions, clock: Clock
) -> None:
    (agent,) = await agents(sessions, 1)
    (analyst,) = await agents(sessions, 1, roles=("analyst",))
    (supervisor,) = await agents(sessions, 1, roles=("supervisor",))
    held, ticket_id = await queued(sessions, 2, clock.now)
    async with sessions() as session, session.begin():
        await support.claim(session, agent, held, now=clock.now, limit=1, address=None)

    async def assign(agent_id: int | None) -> SupportTicket:
        async with sessions() as session, session.begin():
            return await support.assign(
                session, supervisor, ticket_id, agent_id, now=clock.now, limit=1, address=None
            )

    for nobody in (9999, analyst.account_id):
        with pytest.raises(InvalidStaffInput, match="not an active agent"):
            await assign(nobody)
    with pytest.raises(Conflict, match="already holds 1"):
        await assign(agent.account_id)
    assert (await assign(supervisor.account_id)).agent_id == supervisor.account_id
    assert (await assign(None)).state == "waiting"
    async with sessions() as session:
        ticket = await session.get(SupportTicket, ticket_id)
        assert ticket is not None and (ticket.state, ticket.agent_id) == ("waiting", None)


async def test_an_agent_sees_the_conversations_in_their_languages_first(
    sessions: Sessions, clock: Clock
) -> None:
    (plain,) = await agents(sessions, 1)
    async with sessions() as session, session.begin():
        new = NewAccount.checked("zanele@city.gov", roles=["agent"], languages=["zu", "xh"])
        made = await create_account(session, new, actor="test", hasher=FAST_HASHER)
    speaker = StaffIdentity(made.account.id, new.email, new.roles, wards=None)
    (old_en,) = await queued(sessions, 1, clock.now)
    (urgent_en,) = await queued(sessions, 1, clock.now + timedelta(minutes=1))
    (zu,) = await queued(sessions, 1, clock.now + timedelta(minutes=2), locale="zu")
    (af,) = await queued(sessions, 1, clock.now + timedelta(minutes=3), locale="af")
    (xh,) = await queued(sessions, 1, clock.now + timedelta(minutes=4), locale="xh")
    async with sessions() as session, session.begin():
        urgent = await session.get(SupportTicket, urgent_en)
        assert urgent is not None
        urgent.priority = 10
    async with sessions() as session:
        for_speaker = [t.id for t in await support.queue(session, speaker)]
        for_plain = [t.id for t in await support.queue(session, plain)]
        only_af = [t.id for t in await support.queue(session, speaker, language="af")]
    assert for_speaker == [zu, xh, urgent_en, old_en, af]
    assert for_plain == [urgent_en, old_en, zu, af, xh], "priority, then the longest wait"
    assert only_af == [af]


async def test_transfer_to_a_team_and_to_another_agent(sessions: Sessions, clock: Clock) -> None:
    first, second = await agents(sessions, 2)
    (supervisor,) = await agents(sessions, 1, roles=("supervisor",))
    (ticket_id, other_id) = await queued(sessions, 2, clock.now, locale="zu")
    async with sessions() as session, session.begin():
        await support.claim(session, first, ticket_id, now=clock.now, limit=1, address=None)
    later = clock.now + timedelta(minutes=3)

    async with sessions() as session, session.begin():
        with pytest.raises(Conflict, match="not yours"):
            await support.transfer(
                session,
                second,
                ticket_id,
                agent_id=None,
                team="electricity",
                now=later,
                limit=1,
                address=None,
            )
    async with sessions() as session, session.begin():
        with pytest.raises(InvalidStaffInput, match="team is one of"):
            await support.transfer(
                session,
                first,
                ticket_id,
                agent_id=None,
                team="roads",
                now=later,
                limit=1,
                teams=("electricity", "zu"),
                address=None,
            )
    async with sessions() as session, session.begin():
        ticket, notice = await support.transfer(
            session,
            first,
            ticket_id,
            agent_id=None,
            team="Electricity",
            now=later,
            limit=1,
            teams=("electricity", "zu"),
            address=None,
        )
    assert (ticket.state, ticket.agent_id, ticket.team) == ("waiting", None, "electricity")
    assert notice == "Omunye wabasebenzi uzoqhubeka nawe lapha."
    async with sessions() as session:
        for_team = await support.queue(session, second, team="electricity")
        for_others = await support.queue(session, second, team="water")
    assert [t.id for t in for_team] == [ticket_id] and for_others == []

    # A supervisor passes it to an agent directly; the agent's limit holds.
    async with sessions() as session, session.begin():
        await support.claim(session, second, other_id, now=later, limit=1, address=None)
    async with sessions() as session, session.begin():
        with pytest.raises(Conflict, match="already holds 1"):
            await support.transfer(
                session,
                supervisor,
                ticket_id,
                agent_id=second.account_id,
                team=None,
                now=later,
                limit=1,
                address=None,
            )
    async with sessions() as session, session.begin():
        with pytest.raises(InvalidStaffInput, match="not an active agent"):
            await support.transfer(
                session,
                supervisor,
                ticket_id,
                agent_id=9999,
                team=None,
                now=later,
                limit=1,
                address=None,
            )
    async with sessions() as session, session.begin():
        ticket, _ = await support.transfer(
            session,
            supervisor,
            ticket_id,
            agent_id=first.account_id,
            team=None,
            now=later,
            limit=1,
            address=None,
        )
    assert (ticket.state, ticket.agent_id, ticket.held_since) == ("held", first.account_id, later)
    async with sessions() as session:
        audited = (
            await session.execute(
                select(AuditLog.actor, AuditLog.details).where(
                    AuditLog.action == "support.transfer"
                )
            )
        ).all()
    assert [details["to_team"] for _, details in audited] == ["electricity", None]
    assert audited[1][0] == f"staff:{supervisor.account_id}"
