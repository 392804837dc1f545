"""Redis away: an SMS is accepted (200, not the 503 Twilio would never retry), kept in the
database, and run in order once Redis is back; /readyz says `redis: down` meanwhile (issue 15).

Redis is reached through a loopback TCP proxy the test stops and starts (tests/web/tcp_proxy.py);
the database is SQLite, the app is ``citybot serve``'s with its workers, the fake Twilio records
what is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from yarl import URL

from storage.models import HeldMessage, MessageLog
from storage.redis import outage_of
from tests.channels.signed import twilio_form
from tests.e2e.city import City, SmsResident, running_city
from tests.fakes.telegram_api import FakeTelegram
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


async def test_a_redis_that_is_down_is_logged_once_with_a_count_not_a_traceback_a_second(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every reply stream (SMS, WhatsApp, Telegram), the lock renewals and the held messages
    retry about once a second while Redis is away: one line when it goes, a count now and then
    while it stays away, one line when it is back; never a traceback (issue 16)."""
    target = URL(redis_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 6379)
    await proxy.start()
    proxied = str(target.with_port(proxy.port))
    async with (
        FakeTelegram() as telegram,
        FakeTwilio() as twilio,
        running_city(
            tmp_path, telegram=telegram, twilio=twilio, env={"CITYBOT_REDIS_URL": proxied}
        ) as city,
    ):
        redis = city.services.redis
        assert redis is not None and len(city.services.replies.streams) == 3
        outage = outage_of(redis)
        outage.summary_seconds = 1.0  # a minute in production; the test cannot wait for that
        resident = SmsResident(city, f"+2784{uuid.uuid4().int % 10**7:07d}")
        await _sms(city, resident, "menu")
        await _eventually(lambda: _answered(resident, 1), 10)

        caplog.clear()
        caplog.set_level(logging.WARNING)
        await proxy.stop()
        await _sms(city, resident, "pothole")  # held: counted with the rest
        started = time.monotonic()
        # Three streams failing about once a second each: well over a dozen failures.
        await _eventually(lambda: _true(outage.failures >= 15), 30)
        down_for = time.monotonic() - started
        during = [r for r in caplog.records if r.name.startswith("citybot")]
        await proxy.start()
        await _eventually(lambda: _true(not outage.down), 30)

    back = [r for r in caplog.records if r.getMessage() == "Redis is back"]
    assert len(back) == 1 and back[0].failures >= 15  # type: ignore[attr-defined]
    # citybot's own lines (SQLAlchemy's pool may log a connection cancelled at shutdown).
    ours = [r for r in caplog.records if r.name.startswith("citybot")]
    assert not [r for r in ours if r.exc_info], "no traceback for a Redis that is away"
    went = [r for r in during if r.getMessage().startswith("Redis unavailable")]
    assert len(went) == 1, [r.getMessage() for r in during]
    summaries = [r for r in during if r.getMessage() == "Redis still unavailable"]
    assert len(summaries) <= down_for / outage.summary_seconds + 1
    # Nothing else repeats while it is down (pacing alone says so once, as it falls back).
    others = [r for r in during if r not in went and r not in summaries]
    assert len(others) <= 2, [r.getMessage() for r in others]


async def _true(value: bool) -> bool:
    return value
