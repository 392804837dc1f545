"""The store of messages held over a rate limit, on SQLite and PostgreSQL: kept once, offered
oldest first per conversation, each to one process at a time, taken over when a lease ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.types import InboundKind, InboundMessage
from conversations.held_inbound import HeldInbound, message_from_json, message_to_json
from conversations.keys import ConversationKey
from forms_runtime.effects import GeoPoint, MediaRef
from storage.models import HeldMessage
from tests.conversations.stores import sql_sessionmaker


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgres"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sql_sessionmaker(request.param, tmp_path) as sessionmaker:
        yield sessionmaker


def _message(address: str, n: int) -> InboundMessage:
    return InboundMessage("sms", address, f"SM{address}-{n}", text=f"message {n}")


async def test_kept_once_and_offered_oldest_first_one_per_conversation(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    held = HeldInbound(sessions, clock=Clock())
    for n in range(3):
        assert await held.hold(_message("+27820000001", n))
    assert not await held.hold(_message("+27820000001", 2))  # the provider's retry
    assert await held.hold(_message("+27820000002", 0))
    assert await held.waiting(ConversationKey("sms", "+27820000001"))
    assert not await held.waiting(ConversationKey("sms", "+27829999999"))

    first = await held.due()
    assert [m.message_id for _, m in first] == ["SM+27820000001-0", "SM+27820000002-0"]
    assert await held.due() == []  # both leased: the next of a conversation waits its turn
    for row, _ in first:
        await held.done(row)
    second = await held.due()
    assert [m.message_id for _, m in second] == ["SM+27820000001-1"]
    await held.release(second[0][0])  # still over the limit
    assert [m.message_id for _, m in await held.due()] == ["SM+27820000001-1"]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(HeldMessage)) == 2


async def test_two_processes_never_take_the_same_message(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    one, two = HeldInbound(sessions, clock=clock), HeldInbound(sessions, clock=clock)
    for address in range(30):
        await one.hold(_message(f"+2782{address:07d}", 0))
    taken = await asyncio.gather(one.due(), two.due(), one.due(), two.due())
    ids = [row for batch in taken for row, _ in batch]
    assert len(ids) == len(set(ids)) == 30


async def test_a_killed_process_s_message_is_taken_over_when_its_lease_ends(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    lease = timedelta(seconds=60)
    killed, alive = (
        HeldInbound(sessions, clock=clock, lease=lease),
        HeldInbound(sessions, clock=clock),
    )
    await killed.hold(_message("+27820000003", 0))
    [(row, _)] = await killed.due()  # ...and the process dies before done()
    assert await alive.due() == []
    clock.now += lease + timedelta(seconds=1)
    [(again, message)] = await alive.due()
    assert again == row and message.text == "message 0"


def test_every_part_of_a_message_survives_being_kept() -> None:
    message = InboundMessage(
        "telegram",
        "123",
        "u-9",
        kind=InboundKind.LOCATION,
        text=None,
        option_id="water",
        location=GeoPoint(-34.05, 18.6),
        media=(MediaRef("https://x/1.jpg", "image/jpeg", 2048),),
        contact_phone="+27820000004",
        language_hint="zu",
        display_name="Thandi",
        received_at=datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
    )
    assert message_from_json(message_to_json(message)) == message
