"""Agents and queued conversations for the support tests on the staff side."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from staff.accounts import NewAccount, create_account
from staff.identity import StaffIdentity
from storage.models import SupportTicket
from tests.staff.conftest import FAST_HASHER


async def agents(
    sessions: async_sessionmaker[AsyncSession], count: int, roles: tuple[str, ...] = ("agent",)
) -> list[StaffIdentity]:
    made = []
    async with sessions() as session, session.begin():
        for n in range(count):
            new = NewAccount.checked(f"{roles[0]}{n}@city.gov", roles=list(roles))
            created = await create_account(session, new, actor="test", hasher=FAST_HASHER)
            made.append(StaffIdentity(created.account.id, new.email, new.roles, wards=None))
    return made


async def queued(
    sessions: async_sessionmaker[AsyncSession],
    count: int,
    at: datetime,
    *,
    locale: str = "en",
) -> list[int]:
    async with sessions() as session, session.begin():
        tickets = [
            SupportTicket(
                channel="sms",
                address=f"+2783000{n:04d}",
                locale=locale,
                state="waiting",
                created_at=at,
                last_resident_at=at,
            )
            for n in range(count)
        ]
        session.add_all(tickets)
        await session.flush()
        return [t.id for t in tickets]
