"""kill -9 a server whose replies cannot go out yet: the next server sends each of them once.

With Redis, a reply is committed on the reply stream with its turn (``notifier.replies``), so a
resident whose message was acknowledged is answered even if the process dies before it could
send: here Twilio is down while the first server runs, the server is killed, Twilio recovers, and
a new server (another consumer) takes the replies over and sends each one exactly once.
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
from tests.web.serve_process import CITYBOT, ServeProcess

pytestmark = pytest.mark.redis

# The server's stores use the default prefix; this test owns these keys for its duration.
STREAM = "citybot:{s0}:replies:sms"
# Fresh residents and message ids each run: Redis keeps dedupe markers and states between runs.
_RUN = random.Random().randrange(10**6)
NUMBERS = tuple(f"+2783{_RUN:06d}{n}" for n in range(3))
DOWN = {"code": 20500, "message": "Service Unavailable", "status": 503}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.delete(STREAM)
    yield client
    await client.delete(STREAM)
    await client.aclose()


async def _post_sms(http: aiohttp.ClientSession, url: str, number: str) -> None:
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
    async with http.post(url + path, data=urlencode(form), headers=headers) as response:
        assert response.status == 200, await response.text()


async def _until(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_replies_outlive_a_killed_server(
    tmp_path: Path, redis_url: str, redis: Redis
) -> None:
    async with FakeTwilio() as twilio:
        twilio.fail_next(503, DOWN, times=10_000)
        server = ServeProcess(
            tmp_path,
            {
                "CITYBOT_REDIS_URL": redis_url,
                "CITYBOT_PUBLIC_URL": PUBLIC_URL,
                "CITYBOT_REPLY_CLAIM_SECONDS": "0.5",
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_SMS_FROM": "+27211234567",
                "TWILIO_API_BASE_URL": twilio.url,
                "CITYBOT_TWILIO_SEND_RATE": "1000",
            },
        )
        try:
            await asyncio.to_thread(server.start)
            async with aiohttp.ClientSession() as http:
                for number in NUMBERS:
                    await _post_sms(http, server.url, number)
            # The server is trying (and failing) to send every reply.
            await _until(lambda: {r.form.get("To") for r in twilio.requests} >= set(NUMBERS), 10)
            server.kill_hard()
            assert await redis.xlen(STREAM) == len(NUMBERS)
            assert twilio.messages() == []

            twilio._script.clear()  # Twilio is back
            await asyncio.to_thread(server.start)
            await _until(lambda: len(twilio.messages()) >= len(NUMBERS), 15)
            await asyncio.sleep(1.0)  # time for any second copy to show up
            sent = sorted(m.form["To"] for m in twilio.messages())
            assert sent == sorted(NUMBERS), "each reply exactly once"
            # Each resident gets the same answer to "pothole", as the first server would have.
            assert len({m.form["Body"] for m in twilio.messages()}) == 1
            assert await redis.xlen(STREAM) == 0
            assert server.stop() == 0
        finally:
            if server.process is not None and server.process.poll() is None:
                server.stop(signal.SIGKILL)


async def test_a_web_process_without_replies_and_a_reply_worker(
    tmp_path: Path, redis_url: str, redis: Redis
) -> None:
    """``citybot serve --no-workers --no-replies`` takes messages in; the replies wait on the
    stream until ``citybot worker --only replies`` starts, which sends each one once."""
    async with FakeTwilio() as twilio:
        server = ServeProcess(
            tmp_path,
            {
                "CITYBOT_REDIS_URL": redis_url,
                "CITYBOT_PUBLIC_URL": PUBLIC_URL,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_SMS_FROM": "+27211234567",
                "TWILIO_API_BASE_URL": twilio.url,
                "CITYBOT_TWILIO_SEND_RATE": "1000",
            },
            args=("--no-workers", "--no-replies"),
        )
        worker: asyncio.subprocess.Process | None = None
        numbers = tuple(f"+2784{_RUN:06d}{n}" for n in range(3))
        try:
            await asyncio.to_thread(server.start)
            async with aiohttp.ClientSession() as http:
                for number in numbers:
                    await _post_sms(http, server.url, number)
            await asyncio.sleep(1.0)
            assert twilio.requests == [], "the web process sent what it was told to leave"
            assert await redis.xlen(STREAM) == len(numbers)

            worker = await asyncio.create_subprocess_exec(
                str(CITYBOT),
                "worker",
                "--only",
                "replies",
                cwd=tmp_path,
                env=server.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), 30)
            assert line.decode().strip() == "citybot worker is running: replies"
            await _until(lambda: len(twilio.messages()) >= len(numbers), 15)
            await asyncio.sleep(0.5)  # time for any second copy to show up
            assert sorted(m.form["To"] for m in twilio.messages()) == sorted(numbers)
            assert await redis.xlen(STREAM) == 0
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.wait(), 20) == 0
            assert server.stop() == 0
        finally:
            if worker is not None and worker.returncode is None:
                worker.kill()
                await worker.wait()
            if server.process is not None and server.process.poll() is None:
                server.stop(signal.SIGKILL)
