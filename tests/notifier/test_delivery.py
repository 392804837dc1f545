"""ResidentDelivery: the resident's address on their channel, opt-out and erasure respected,
every message logged, provider failures reported; real SMS channel against the fake Twilio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.base import BaseChannel
from channels.twilio_common import TwilioAccount
from channels.twilio_sms import SmsChannel
from channels.webchat import WebChatChannel
from notifier.delivery import NotDelivered, ResidentDelivery, ResidentGone, Undeliverable
from notifier.ports import ResidentMessage
from storage.models import MessageLog, Resident, ResidentAddress
from storage.session import create_engine, create_sessionmaker
from storage.types import utc_now
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.storage.databases import sqlite_database

PHONE = "+27831234567"


@dataclass
class Setup:
    sessions: async_sessionmaker[AsyncSession]
    twilio: FakeTwilio
    channels: dict[str, BaseChannel]

    async def resident(
        self, channel: str = "sms", address: str = PHONE, *, gone: str | None = None
    ) -> int:
        """A resident reachable on ``channel``; ``gone`` names a timestamp to set (opted out...)."""
        async with self.sessions() as db, db.begin():
            resident = Resident(locale="en")
            if gone is not None:
                setattr(resident, gone, utc_now())
            db.add(resident)
            await db.flush()
            db.add(
                ResidentAddress(
                    resident_id=resident.id,
                    channel=channel,
                    address=address,
                    last_inbound_at=utc_now(),
                )
            )
            return resident.id

    async def log(self) -> list[MessageLog]:
        async with self.sessions() as db:
            return list((await db.scalars(select(MessageLog).order_by(MessageLog.id))).all())


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with FakeTwilio() as twilio, sqlite_database(tmp_path) as url:
        engine = create_engine(url)
        account = TwilioAccount(
            ACCOUNT_SID, AUTH_TOKEN, "https://bot.city.example", api_base_url=twilio.url
        )
        sms = SmsChannel(account, "+27211234567", per_second=1000)
        channels: dict[str, BaseChannel] = {"sms": sms, "webchat": WebChatChannel("s")}
        yield Setup(create_sessionmaker(engine), twilio, channels)
        await sms.close()
        await engine.dispose()


def message(resident_id: int, channel: str = "sms", text: str = "Closed.") -> ResidentMessage:
    return ResidentMessage(
        resident_id=resident_id,
        channel=channel,
        locale="en",
        text=text,
        purpose="status_update",
        reference="CT-7KQ4XM",
        template_variables={"reference": "CT-7KQ4XM", "status": "closed"},
    )


async def test_sends_on_the_reported_channel_and_logs_the_text(setup: Setup) -> None:
    resident = await setup.resident()
    await ResidentDelivery(setup.sessions, setup.channels)(message(resident))
    [sent] = setup.twilio.messages()
    assert (sent.form["To"], sent.form["Body"]) == (PHONE, "Closed.")
    [row] = await setup.log()
    assert (row.direction, row.kind, row.text, row.status) == (
        "out",
        "status_update",
        "Closed.",
        "sent",
    )
    assert row.provider_message_id and row.provider_message_id.startswith("SM")


@pytest.mark.parametrize("gone", ["opted_out_at", "erased_at"])
async def test_nothing_goes_to_an_opted_out_or_erased_resident(setup: Setup, gone: str) -> None:
    resident = await setup.resident(gone=gone)
    with pytest.raises(ResidentGone):
        await ResidentDelivery(setup.sessions, setup.channels)(message(resident))
    assert setup.twilio.messages() == []
    assert await setup.log() == []


async def test_the_latest_reachable_address_is_used(setup: Setup) -> None:
    resident = await setup.resident()
    async with setup.sessions() as db, db.begin():
        db.add(
            ResidentAddress(
                resident_id=resident,
                channel="sms",
                address="+27830000009",
                last_inbound_at=utc_now() - timedelta(days=3),
            )
        )
        db.add(
            ResidentAddress(
                resident_id=resident,
                channel="sms",
                address="+27830000008",
                last_inbound_at=utc_now() + timedelta(minutes=1),
                unreachable_at=utc_now(),
            )
        )
    await ResidentDelivery(setup.sessions, setup.channels)(message(resident))
    assert [m.form["To"] for m in setup.twilio.messages()] == [PHONE]


async def test_no_address_on_that_channel_is_not_delivered(setup: Setup) -> None:
    resident = await setup.resident(channel="telegram", address="123")
    with pytest.raises(Undeliverable, match="no reachable sms address"):
        await ResidentDelivery(setup.sessions, setup.channels)(message(resident))


async def test_a_channel_that_is_off_is_not_delivered(setup: Setup) -> None:
    resident = await setup.resident(channel="whatsapp")
    with pytest.raises(NotDelivered, match="whatsapp channel is not configured"):
        await ResidentDelivery(setup.sessions, setup.channels)(message(resident, "whatsapp"))


async def test_a_carrier_opt_out_marks_the_resident(setup: Setup) -> None:
    resident = await setup.resident()
    setup.twilio.fail_with_fixture("rest_error_21610.json")
    with pytest.raises(Undeliverable, match="unreachable"):
        await ResidentDelivery(setup.sessions, setup.channels)(message(resident))
    async with setup.sessions() as db:
        person = await db.get(Resident, resident)
        address = await db.scalar(select(ResidentAddress))
    assert person is not None and person.opted_out_at is not None
    assert address is not None and address.unreachable_at is not None
    [row] = await setup.log()
    assert row.status == "unreachable"


async def test_web_chat_messages_wait_in_the_log_for_the_page(setup: Setup) -> None:
    resident = await setup.resident(channel="webchat", address="session-1")
    await ResidentDelivery(setup.sessions, setup.channels)(message(resident, "webchat"))
    [row] = await setup.log()
    assert (row.channel, row.address, row.text, row.status) == (
        "webchat",
        "session-1",
        "Closed.",
        "queued",
    )


async def test_a_long_text_is_split_as_the_channel_renders_it(setup: Setup) -> None:
    resident = await setup.resident()
    long_text = " ".join(["The crew has finished the work on your street."] * 12)
    await ResidentDelivery(setup.sessions, setup.channels)(message(resident, text=long_text))
    bodies = [m.form["Body"] for m in setup.twilio.messages()]
    assert len(bodies) > 1
    rows = await setup.log()
    # The text is logged once (what the resident was told), each part tracks its own receipts.
    assert [r.text for r in rows] == [long_text] + [None] * (len(bodies) - 1)


@pytest.mark.parametrize("reply_lane", [True, False])
async def test_an_agents_answer_goes_ahead_of_bulk_notices(setup: Setup, reply_lane: bool) -> None:
    """A support agent's message answers a resident who is waiting: in the pacer's reply lane it
    is sent before status notices queued ahead of it, as the bot's own answers are; in the bulk
    lane it would wait behind all of them."""
    slow = SmsChannel(
        TwilioAccount(
            ACCOUNT_SID, AUTH_TOKEN, "https://bot.city.example", api_base_url=setup.twilio.url
        ),
        "+27211234567",
        per_second=5,
    )
    try:
        deliver = ResidentDelivery(
            setup.sessions,
            {"sms": slow},
            reply_purposes={"agent_reply"} if reply_lane else (),
        )
        waiting = [await setup.resident(address=f"+2783000{n:04d}") for n in range(8)]
        agent_for = await setup.resident(address="+27839999999")
        notices = [asyncio.create_task(deliver(message(r))) for r in waiting]
        await asyncio.sleep(0.05)  # the notices are in line first
        answer = ResidentMessage(
            resident_id=agent_for,
            channel="sms",
            locale="en",
            text="Hello, I am Thandi from the city.",
            purpose="agent_reply",
            reference="T1",
        )
        await asyncio.gather(deliver(answer), *notices)
    finally:
        await slow.close()
    order = [m.form["To"] for m in setup.twilio.messages()]
    place = order.index("+27839999999")
    assert place <= 2 if reply_lane else place > 2, order
