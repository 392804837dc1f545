"""Redis away: an SMS is accepted (200, not the 503 Twilio would never retry), kept in the
database, and run in order once Redis is back; /readyz says `redis: down` meanwhile (issue 15).

Redis is reached through a loopback TCP proxy the test stops and starts (tests/web/tcp_proxy.py);
the database is SQLite, the app is ``citybot serve``'s with its workers, the fake Twilio records
what is sent.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from yarl import URL

from storage.models import HeldMessage, MessageLog
from tests.channels.signed import twilio_form
from tests.e2e.city import City, SmsResident, running_city
from tests.fakes.twilio_api import FakeTwilio
from tests.web.tcp_proxy import TcpProxy

pytestmark = pytest.mark.redis


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def _sms(city: City, resident: SmsResident, body: str) -> str:
    sid = f"SM{uuid.uuid4().hex}"
    form = twilio_form("inbound_sms.json", Body=body, From=resident.address, MessageSid=sid)
    headers, data = resident._post_twilio_form("/webhooks/twilio/sms", form)
    async with city.http.post(city.url + "/webhooks/twilio/sms", data=data, headers=headers) as r:
        assert r.status == 200, await r.text()
    return sid


async def test_sms_sent_while_redis_is_down_are_kept_and_answered_in_order(
    tmp_path: Path, redis_url: str
) -> None:
    target = URL(redis_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 6379)
    await proxy.start()
    proxied = str(target.with_port(proxy.port))
    phone = f"+2784{uuid.uuid4().int % 10**7:07d}"
    async with (
        FakeTwilio() as twilio,
        running_city(tmp_path, twilio=twilio, env={"CITYBOT_REDIS_URL": proxied}) as city,
    ):
        resident = SmsResident(city, phone)
        first = await _sms(city, resident, "menu")
        await _eventually(lambda: _answered(resident, 1), 10)

        await proxy.stop()
        during = [await _sms(city, resident, body) for body in ("pothole", "1", "2")]
        ready = await city.http.get(city.url + "/readyz")
        assert ready.status == 503 and (await ready.json())["checks"]["redis"] == "down"
        sessions = city.services.session_factory
        async with sessions() as db:
            assert await db.scalar(select(func.count()).select_from(HeldMessage)) == 3
        metrics = await (await city.http.get(city.url + "/metrics")).text()
        # Unknown while Redis cannot be read, not frozen at the last value; the kept ones show.
        assert 'citybot_replies_waiting{channel="sms"} NaN' in metrics
        assert 'citybot_queue_waiting{queue="held"} 3.0' in metrics

        await proxy.start()

        async def all_run() -> bool:
            await city.services.turn_loop.flush()
            async with sessions() as db:
                held = await db.scalar(select(func.count()).select_from(HeldMessage))
                logged = await db.scalar(
                    select(func.count())
                    .select_from(MessageLog)
                    .where(MessageLog.direction == "in", MessageLog.address == phone)
                )
            return held == 0 and logged == 4

        await _eventually(all_run, 30)
        async with sessions() as db:
            order = (
                await db.scalars(
                    select(MessageLog.provider_message_id)
                    .where(MessageLog.direction == "in", MessageLog.address == phone)
                    .order_by(MessageLog.id)
                )
            ).all()
        assert list(order) == [first, *during], "run once each, in the order sent"
        # The form went on as if nothing had happened: the pothole report's questions.
        await _eventually(lambda: _answered(resident, 4), 15)
        assert (await city.http.get(city.url + "/readyz")).status == 200


async def _answered(resident: SmsResident, turns: int) -> bool:
    return len(resident.received()) >= turns
