"""Duplicates across two processes: every SMS delivered several times at once, the copies spread
over two ``citybot serve`` processes sharing PostgreSQL and Redis, is processed once and
answered once (issue 15's suite).

Twilio retries a webhook it thinks failed, and a load balancer may send each copy to another
process. Each burst sends every copy of a batch of messages at once, alternating processes;
the message log must hold each message once, and the fake Twilio must have been asked to send
exactly one reply to each resident. CI sends 1,000 deliveries; ``make chaos`` the full 10,000.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from storage.models import MessageLog
from tests.channels.signed import PUBLIC_URL, twilio_signature
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.reliability.figures import chaos, eventually, figure
from tests.storage.databases import postgres_database
from tests.web.serve_process import ServeProcess

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

COPIES = 5
MESSAGES = chaos(200, 2000)  # x COPIES deliveries: 1,000 in CI, 10,000 under make chaos
BURST = 40  # messages whose copies are all in flight at once (x COPIES requests)
CITY = "+27211234567"
PATH = "/webhooks/twilio/sms"


def _delivery(number: str, sid: str) -> tuple[bytes, dict[str, str]]:
    form = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": number,
        "To": CITY,
        "Body": "menu",
        "NumMedia": "0",
    }
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(PATH, form),
    }
    return urlencode(form).encode(), headers


async def test_duplicate_deliveries_across_two_processes_are_processed_and_answered_once(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    run = uuid.uuid4().hex[:8]
    # Fresh numbers each run: Redis keeps dedupe markers and rate buckets between runs.
    base = random.Random().randrange(10**6)
    numbers = [f"+277{base:06d}{n:04d}" for n in range(MESSAGES)]
    statuses: Counter[int] = Counter()
    accepted: set[str] = set()
    async with postgres_database(postgres_url) as database, FakeTwilio() as twilio:
        env = {
            "CITYBOT_DATABASE_URL": database,
            "CITYBOT_REDIS_URL": redis_url,
            "CITYBOT_PUBLIC_URL": PUBLIC_URL,
            "CITYBOT_SESSION_SECRET": "two-processes",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": CITY,
            "TWILIO_API_BASE_URL": twilio.url,
            "CITYBOT_TWILIO_SEND_RATE": "1000",
        }
        servers = [
            ServeProcess(tmp_path, env, log_path=tmp_path / f"serve-{n}.log") for n in range(2)
        ]
        started = time.monotonic()
        try:
            for server in servers:
                await asyncio.to_thread(server.start, 60)
            connector = aiohttp.TCPConnector(limit=BURST * COPIES)
            timeout = aiohttp.ClientTimeout(total=120)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

                async def deliver(copy: int, number: str, sid: str) -> None:
                    body, headers = _delivery(number, sid)
                    server = servers[copy % 2]
                    async with http.post(server.url + PATH, data=body, headers=headers) as r:
                        statuses[r.status] += 1
                        if r.status == 200:
                            accepted.add(sid)

                for first in range(0, MESSAGES, BURST):
                    batch = [
                        (number, f"SM{run}{n:024d}")
                        for n, number in enumerate(numbers[first : first + BURST], first)
                    ]
                    copies = [
                        deliver(copy, number, sid)
                        for number, sid in batch
                        for copy in range(COPIES)
                    ]
                    random.shuffle(copies)
                    await asyncio.gather(*copies)
            sent = time.monotonic() - started
            # A copy refused 503 would be resent by Twilio; each message got at least one 200.
            assert set(statuses) <= {200, 503}, statuses
            assert len(accepted) == MESSAGES

            def answered() -> Counter[str]:
                return Counter(m.form["To"] for m in twilio.messages())

            async def all_answered() -> bool:
                return len(answered()) >= MESSAGES

            await eventually(all_answered, 120, "a reply to every resident")
            await asyncio.sleep(1.0)  # time for any second reply to show up
            for server in servers:
                assert await asyncio.to_thread(server.stop) == 0
        finally:
            for server in servers:
                if server.process is not None and server.process.poll() is None:
                    server.stop(signal.SIGKILL)

        replies = answered()
        engine = create_async_engine(database)
        try:
            async with async_sessionmaker(engine)() as db:
                logged = Counter(
                    dict(
                        (
                            await db.execute(
                                select(MessageLog.provider_message_id, func.count())
                                .where(MessageLog.direction == "in")
                                .group_by(MessageLog.provider_message_id)
                            )
                        ).all()
                    )
                )
        finally:
            await engine.dispose()
    assert sorted(replies) == sorted(numbers)
    # Every resident got the same answer, once: no SMS of it twice, none missing.
    sent_twice = Counter((m.form["To"], m.form["Body"]) for m in twilio.messages())
    assert set(sent_twice.values()) == {1}, "an SMS of a reply was sent twice"
    per_message = set(replies.values())
    assert len(per_message) == 1, f"residents got different numbers of SMS: {per_message}"
    assert len(logged) == MESSAGES and set(logged.values()) == {1}, "each message logged once"
    figure(
        f"duplicates: {MESSAGES * COPIES} deliveries ({MESSAGES} SMS x {COPIES} copies, bursts "
        f"of {BURST * COPIES} across 2 serve processes, PostgreSQL + Redis) in {sent:.0f} s: "
        f"{len(logged)} processed once each, each answered once ({sum(replies.values())} SMS, "
        f"{per_message.pop()} per answer, none twice), "
        f"statuses {dict(statuses)}"
    )
