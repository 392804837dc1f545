"""A flood from one resident: every message over the rate limit is kept and answered later, in
order, once each; the resident is told once that the bot is behind (issue 15: before this, 37 of
50 quick messages were answered 200 and never processed or logged).

Real HTTP on loopback into ``citybot serve``'s app with its workers, the fake Twilio recording
what is sent; on the embedded default (SQLite, in-process limits) and with Redis.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.models import HeldMessage, MessageLog, Resident, ResidentAddress
from tests.channels.signed import twilio_form
from tests.e2e.city import City, SmsResident, running_city
from tests.fakes.twilio_api import FakeTwilio

FLOOD = 40
# Five at once, then five a second: 35 of the 40 are over the limit, and all are run in ~7 s.
LIMITS = {"CITYBOT_RATE_LIMIT_PER_SECOND": "5", "CITYBOT_RATE_LIMIT_BURST": "5"}
TOLD = "I have them all and will answer them in order"


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def _flood(city: City, resident: SmsResident) -> list[str]:
    sids = [f"SM{uuid.uuid4().hex}" for _ in range(FLOOD)]
    for sid in sids:
        form = twilio_form(
            "inbound_sms.json", Body="menu", From=resident.address, MessageSid=sid, SmsSid=sid
        )
        headers, data = resident._post_twilio_form("/webhooks/twilio/sms", form)
        async with city.http.post(
            city.url + "/webhooks/twilio/sms", data=data, headers=headers
        ) as response:
            assert response.status == 200, await response.text()
    # A provider's retry of a held message is held once, not twice.
    form = twilio_form(
        "inbound_sms.json", Body="menu", From=resident.address, MessageSid=sids[-1], SmsSid=sids[-1]
    )
    headers, data = resident._post_twilio_form("/webhooks/twilio/sms", form)
    async with city.http.post(city.url + "/webhooks/twilio/sms", data=data, headers=headers) as r:
        assert r.status == 200
    return sids


async def _every_message_answered_once_in_order(city: City, resident: SmsResident) -> None:
    sids = await _flood(city, resident)
    sessions = city.services.session_factory

    async def all_run() -> bool:
        await city.services.turn_loop.flush()
        async with sessions() as db:
            count = await db.scalar(
                select(func.count())
                .select_from(MessageLog)
                .where(MessageLog.direction == "in", MessageLog.address == resident.address)
            )
            held = await db.scalar(select(func.count()).select_from(HeldMessage))
        return count == FLOOD and held == 0

    await _eventually(all_run, 30)
    async with sessions() as db:
        processed = (
            await db.scalars(
                select(MessageLog.provider_message_id)
                .where(MessageLog.direction == "in", MessageLog.address == resident.address)
                .order_by(MessageLog.id)
            )
        ).all()
        answered = await db.scalar(
            select(func.count())
            .select_from(MessageLog)
            .where(MessageLog.direction == "out", MessageLog.address == resident.address)
            .where(MessageLog.kind.in_(("reply", "late_reply")), MessageLog.text.is_not(None))
        )
    assert list(processed) == sids, "each message run once, in the order it was sent"
    assert answered == FLOOD
    await _eventually(lambda: _said(resident, TOLD, 1), 10)
    await asyncio.sleep(0.5)
    assert await _said(resident, TOLD, 1), "told once that the bot is behind"
    metrics = await (await city.http.get(city.url + "/metrics")).text()
    assert 'citybot_queue_waiting{queue="held"} 0.0' in metrics


async def _said(resident: SmsResident, words: str, times: int) -> bool:
    return sum(words in body for body in resident.received()) == times


async def test_a_flood_is_held_and_answered_in_order_on_the_embedded_default(
    tmp_path: Path,
) -> None:
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio, env=LIMITS) as city:
        await _every_message_answered_once_in_order(city, SmsResident(city, "+27830000001"))


@pytest.mark.redis
async def test_a_flood_is_held_and_answered_in_order_with_redis(
    tmp_path: Path, redis_url: str
) -> None:
    env = LIMITS | {"CITYBOT_REDIS_URL": redis_url}
    phone = f"+2783{uuid.uuid4().int % 10**7:07d}"  # its own conversation keys in the shared Redis
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio, env=env) as city:
        await _every_message_answered_once_in_order(city, SmsResident(city, phone))


async def test_stop_overtakes_a_held_flood_and_nothing_more_is_sent(tmp_path: Path) -> None:
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio, env=LIMITS) as city:
        resident = SmsResident(city, "+27830000002")
        sids = await _flood(city, resident)
        stop_sid = f"SM{uuid.uuid4().hex}"
        form = twilio_form(
            "inbound_sms.json", Body="STOP", From=resident.address, MessageSid=stop_sid
        )
        headers, data = resident._post_twilio_form("/webhooks/twilio/sms", form)
        async with city.http.post(
            city.url + "/webhooks/twilio/sms", data=data, headers=headers
        ) as response:
            assert response.status == 200
        sessions = city.services.session_factory

        async def drained() -> bool:
            await city.services.turn_loop.flush()
            async with sessions() as db:
                return await db.scalar(select(func.count()).select_from(HeldMessage)) == 0

        await _eventually(drained, 30)
        await city.services.replies.sender.drain(10)
        async with sessions() as db:
            order = (
                await db.scalars(
                    select(MessageLog.provider_message_id)
                    .where(MessageLog.direction == "in", MessageLog.address == resident.address)
                    .order_by(MessageLog.id)
                )
            ).all()
            opted_out = await db.scalar(
                select(Resident.opted_out_at)
                .join(ResidentAddress, ResidentAddress.resident_id == Resident.id)
                .where(ResidentAddress.address == resident.address)
            )
        assert opted_out is not None
        assert sorted(order) == sorted([*sids, stop_sid]), "every message run once"
        assert order.index(stop_sid) < order.index(sids[-1]), "STOP went ahead of the flood"
        # The held messages run after STOP were logged but answered with nothing.
        pickers = [b for b in resident.received() if b.startswith("What do you want to report")]
        assert len(pickers) <= order.index(stop_sid)
