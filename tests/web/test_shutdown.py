"""SIGTERM while replies are stuck at a slow provider: the process stops within its grace period.

Issue 10, defect 11: with replies in flight to a slow provider, ``citybot serve`` logged
"stopping: finishing turns in flight" and then hung for good (a reader of the reply stream did
not end when cancelled), ignoring later signals. Here a real ``citybot serve`` on PostgreSQL and
Redis sends to a fake Twilio that takes a minute to answer, more messages arrive as SIGTERM
does, and the process must be gone within the grace period plus two seconds, say what it
handed back, and leave those replies on the stream: a new process sends each of them once.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.channels.signed import PUBLIC_URL, twilio_signature
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.storage.databases import postgres_database
from tests.web.serve_process import ServeProcess

pytestmark = pytest.mark.redis

STREAM = "citybot:{s0}:replies:sms"
GRACE = 3.0
_RUN = random.Random().randrange(10**6)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.delete(STREAM)
    yield client
    await client.delete(STREAM)
    await client.aclose()


def _server(
    tmp_path: Path, database: str, redis_url: str, twilio: FakeTwilio, **env: str
) -> ServeProcess:
    return ServeProcess(
        tmp_path,
        {
            "CITYBOT_DATABASE_URL": database,
            "CITYBOT_REDIS_URL": redis_url,
            "CITYBOT_PUBLIC_URL": PUBLIC_URL,
            "CITYBOT_REPLY_CLAIM_SECONDS": "0.5",
            "CITYBOT_SHUTDOWN_TIMEOUT": str(GRACE),
            "CITYBOT_LOG_LEVEL": "INFO",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": "+27211234567",
            "TWILIO_API_BASE_URL": twilio.url,
            "CITYBOT_TWILIO_SEND_RATE": "1000",
            **env,
        },
        log_path=tmp_path / "serve.log",
    )


async def _post_sms(http: aiohttp.ClientSession, url: str, number: str) -> bool:
    """True once the server acknowledged the message (the turn is committed)."""
    path = "/webhooks/twilio/sms"
    form = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": ACCOUNT_SID,
        "From": number,
        "To": "+27211234567",
        "Body": "pothole",
        "NumMedia": "0",
    }
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(path, form),
    }
    try:
        async with http.post(url + path, data=urlencode(form), headers=headers) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False  # cut by the shutdown: Twilio would deliver it again


async def _until(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _sigterm(server: ServeProcess) -> float:
    """Seconds from SIGTERM to the process's exit."""
    assert server.process is not None
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(server.process.wait, 60)
    return time.monotonic() - started


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_sigterm_with_replies_stuck_at_a_slow_provider(
    tmp_path: Path, redis_url: str, redis: Redis, loop: str
) -> None:
    async with postgres_database() as database, FakeTwilio() as twilio:
        twilio.answer_delay = 60.0
        server = _server(
            tmp_path, database, redis_url, twilio, CITYBOT_EVENT_LOOP=loop.replace("uv", "")
        )
        first = [f"+2786{_RUN:06d}{n:02d}" for n in range(6)]
        more = [f"+2787{_RUN:06d}{n:02d}" for n in range(20)]
        try:
            await asyncio.to_thread(server.start)
            async with aiohttp.ClientSession() as http:
                assert all([await _post_sms(http, server.url, number) for number in first])
                await _until(lambda: twilio.arrived >= len(first), 10)  # stuck at Twilio
                # More messages arriving as SIGTERM does.
                arriving = [asyncio.ensure_future(_post_sms(http, server.url, n)) for n in more]
                await asyncio.sleep(0.05)
                took = await _sigterm(server)
                acknowledged = [
                    n for n, ok in zip(more, await asyncio.gather(*arriving), strict=True) if ok
                ]
            assert took <= GRACE + 2, f"stopped {took:.1f} s after SIGTERM"
            log = (tmp_path / "serve.log").read_text()
            assert "stopping: finishing turns in flight" in log
            assert "stopping: handed back" in log
            assert twilio.messages() == []

            # Twilio answers again; a new process takes over what the first handed back.
            twilio.answer_delay = 0.0
            await asyncio.to_thread(server.start)
            expected = sorted(first + acknowledged)
            await _until(lambda: len(twilio.messages()) >= len(expected), 20)
            await asyncio.sleep(1.0)  # time for any second copy to show up
            assert sorted(m.form["To"] for m in twilio.messages()) == expected, (
                "each acknowledged message answered exactly once"
            )
            assert await redis.xlen(STREAM) == 0
            assert server.stop() == 0
        finally:
            if server.process is not None and server.process.poll() is None:
                server.stop(signal.SIGKILL)


async def test_a_second_sigterm_stops_at_once(tmp_path: Path, redis_url: str, redis: Redis) -> None:
    async with postgres_database() as database, FakeTwilio() as twilio:
        twilio.answer_delay = 60.0
        server = _server(tmp_path, database, redis_url, twilio, CITYBOT_SHUTDOWN_TIMEOUT="60")
        try:
            await asyncio.to_thread(server.start)
            async with aiohttp.ClientSession() as http:
                assert await _post_sms(http, server.url, f"+2788{_RUN:06d}00")
            await _until(lambda: twilio.arrived >= 1, 10)
            assert server.process is not None
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            server.process.send_signal(signal.SIGTERM)
            status = await asyncio.to_thread(server.process.wait, 60)
            assert time.monotonic() - started <= 2.5
            assert status == 1  # stopped before its work was done
            log = (tmp_path / "serve.log").read_text()
            assert "stopping now (a second signal): stopping: handed back 1 replies" in log
            assert await redis.xlen(STREAM) == 1  # left for the next process
        finally:
            if server.process is not None and server.process.poll() is None:
                server.stop(signal.SIGKILL)
