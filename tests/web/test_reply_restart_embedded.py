"""kill -9 the embedded default (SQLite, no Redis) with replies it could not send yet: the next
start sends every one of them, once (issue 15: before, 264 of 300 accepted messages were never
answered, since the replies were held only in memory).

Each turn commits its reply in the database (``notifier.reply_outbox``); here Twilio hangs
while the first server runs, 300 SMS from 100 residents are accepted, the server is killed, Twilio
answers again, and a new server on the same SQLite file sends each reply exactly once, in order.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

from tests.channels.signed import PUBLIC_URL, twilio_signature
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.web.serve_process import ServeProcess

RESIDENTS = 100
EACH = 3


async def _post_sms(http: aiohttp.ClientSession, url: str, number: str, body: str) -> None:
    path = "/webhooks/twilio/sms"
    form = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": ACCOUNT_SID,
        "From": number,
        "To": "+27211234567",
        "Body": body,
        "NumMedia": "0",
    }
    headers = {
        "X-Twilio-Signature": twilio_signature(path, form),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with http.post(url + path, data=urlencode(form), headers=headers) as response:
        assert response.status == 200, await response.text()


async def _until(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _pending(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        (count,) = connection.execute("SELECT count(*) FROM pending_replies").fetchone()
    return int(count)


async def test_replies_outlive_a_killed_embedded_server(tmp_path: Path) -> None:
    numbers = [f"+2782{n:07d}" for n in range(RESIDENTS)]
    # Three messages each, answered differently: the order can be checked.
    bodies = ("menu", "1", "menu")
    async with FakeTwilio() as twilio:
        # Twilio hangs: every send is still in flight when the server dies (a 503 would let
        # an early reply run out of retries while the rest are still being posted).
        twilio.answer_delay = 60.0
        server = ServeProcess(
            tmp_path,
            {
                "CITYBOT_PUBLIC_URL": PUBLIC_URL,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_SMS_FROM": "+27211234567",
                "TWILIO_API_BASE_URL": twilio.url,
                "CITYBOT_TWILIO_SEND_RATE": "1000",
                "CITYBOT_RATE_LIMIT_PER_SECOND": "100",
                "CITYBOT_RATE_LIMIT_BURST": "100",
            },
        )
        db = tmp_path / "citybot.sqlite3"
        try:
            await asyncio.to_thread(server.start)
            async with aiohttp.ClientSession() as http:
                for body in bodies:
                    await asyncio.gather(*(_post_sms(http, server.url, n, body) for n in numbers))
            assert _pending(db) == RESIDENTS * EACH
            server.kill_hard()
            assert twilio.messages() == []

            twilio.answer_delay = 0.0  # Twilio is back
            await asyncio.to_thread(server.start)
            await _until(lambda: _pending(db) == 0, 60)
            await asyncio.sleep(1.0)  # time for any second copy to show up
            sent = twilio.messages()
            by_resident = {
                number: [m.form["Body"] for m in sent if m.form["To"] == number]
                for number in numbers
            }
            # Every resident said the same three things, so each heard the same four SMS (the
            # first answer is long), in the same order, once: nothing lost, nothing doubled.
            expected = by_resident[numbers[0]]
            assert len(expected) == 4
            assert expected[0].startswith("Hello") and expected[-1].startswith("What do you")
            assert all(heard == expected for heard in by_resident.values())
            assert server.stop() == 0
        finally:
            if server.process is not None and server.process.poll() is None:
                server.stop(signal.SIGKILL)
