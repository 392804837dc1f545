"""A resident talks to the bot while a big broadcast drains: how long does each answer take?

The scenario for ``test_replies_during_broadcast.py`` (20,000 recipients) and
``bench/broadcast.py --replies`` (a million). A scratch PostgreSQL database gets ``recipients``
Telegram subscribers (``COPY``) and a city-wide emergency broadcast to them; a real
``citybot serve`` (the broadcasts worker and the reply streams in one process, Redis for the
queues and the shared pacer) sends it to the fake Telegram, whose limit is set to ``rate``. Once
the broadcast is arriving at the fake, a resident who is not a subscriber writes ``turns``
messages through the Telegram webhook, one every ``spacing`` seconds (the bot answers one a
second per chat), and each answer's latency is timed from the webhook's POST to the answer's
arrival at the fake. Replies and the broadcast share one pacer: the broadcast books its slots
in the bulk lane, at most ``channels.pacing.DEFAULT_BULK_HORIZON`` ahead, so an answer waits
behind at most that much of it.

Example::

    result = await replies_during_broadcast(postgres_url, redis_url, recipients=20_000)
    print(result)   # 12 answers during the broadcast: p50 180 ms, p99 420 ms, ...
"""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

from storage.models import Broadcast, StaffAccount
from storage.redis import connect_redis
from storage.session import create_engine, create_sessionmaker
from tests.fakes.telegram_api import FakeTelegram
from tests.storage.databases import postgres_database
from tests.web.serve_process import ServeProcess

__all__ = ["Result", "replies_during_broadcast"]

TOKEN = "123456:TEST-TOKEN"
SECRET = "broadcast-secret"
# The resident who talks to the bot (no subscriber has a chat id this low).
RESIDENT_CHAT = 4242
FIRST_SUBSCRIBER_CHAT = 500_000_000


@dataclass(frozen=True, slots=True)
class Result:
    latencies: list[float]  # seconds, one per answer, in the order the resident wrote
    broadcast_before: int  # broadcast messages at the fake when the resident began
    broadcast_after: int  # ... and when the last answer arrived
    broadcast_end: int  # ... and when the scenario stopped (the broadcast still draining)
    recipients: int

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.999))]

    def __str__(self) -> str:
        return (
            f"{len(self.latencies)} answers during a broadcast to {self.recipients:,}: "
            f"p50 {self.percentile(0.5) * 1000:.0f} ms, p99 {self.percentile(0.99) * 1000:.0f} ms, "
            f"max {max(self.latencies) * 1000:.0f} ms; broadcast messages sent meanwhile "
            f"{self.broadcast_after - self.broadcast_before:,} "
            f"({self.broadcast_end:,} of {self.recipients:,} by the end)"
        )


async def seed(url: str, recipients: int) -> None:
    """``recipients`` Telegram residents following a ward each, and a broadcast to everyone."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    now = datetime.now(UTC)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "residents",
            columns=["id", "locale", "created_at"],
            records=((n, "en", now) for n in range(1, recipients + 1)),
        )
        await connection.copy_records_to_table(
            "resident_addresses",
            columns=["resident_id", "channel", "address", "last_inbound_at", "created_at"],
            records=(
                (n, "telegram", str(FIRST_SUBSCRIBER_CHAT + n), now, now)
                for n in range(1, recipients + 1)
            ),
        )
        await connection.copy_records_to_table(
            "subscriptions",
            columns=["resident_id", "ward", "label", "topics", "created_at"],
            records=((n, str(n % 116 + 1), "ward", ",all,", now) for n in range(1, recipients + 1)),
        )
        await connection.execute("SELECT setval('residents_id_seq', $1)", recipients)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session, session.begin():
        author = StaffAccount(email="b@city.gov", roles=["broadcaster"], password_hash="-")
        session.add(author)
        await session.flush()
        session.add(
            Broadcast(
                author_id=author.id,
                title="Water",
                texts={"en": "Water is off city-wide until 18:00."},
                target={"wards": [], "everyone": True},
                topic="water",
                channels=["telegram"],
                urgency="emergency",
                state="scheduled",
            )
        )
    await engine.dispose()


def _update(n: int, text: str) -> dict[str, object]:
    person = {"id": RESIDENT_CHAT, "is_bot": False, "first_name": "Thandi", "language_code": "en"}
    return {
        "update_id": 700_000_000 + n,
        "message": {
            "message_id": 100 + n,
            "from": person,
            "chat": {"id": RESIDENT_CHAT, "first_name": "Thandi", "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }


async def replies_during_broadcast(
    postgres_server_url: str,
    redis_url: str,
    *,
    recipients: int,
    rate: float = 30.0,
    turns: int = 12,
    spacing: float = 1.5,
    answer_timeout: float = 30.0,
    workdir: Path,
) -> Result:
    redis = connect_redis(redis_url)
    await redis.flushdb()  # no streams or pacing of an earlier run
    await redis.aclose()
    async with postgres_database(postgres_server_url) as url, FakeTelegram() as telegram:
        await seed(url, recipients)

        resident = str(RESIDENT_CHAT)

        def answers() -> int:
            return sum(1 for r in telegram.requests if r.form.get("chat_id") == resident)

        def broadcast_sent() -> int:
            return sum(
                1
                for r in telegram.requests
                if r.path.endswith("/sendMessage") and r.form.get("chat_id") != resident
            )

        server = ServeProcess(
            workdir,
            {
                "CITYBOT_DATABASE_URL": url,
                "CITYBOT_REDIS_URL": redis_url,
                "CITYBOT_QUIET_HOURS": "off",
                "CITYBOT_DISPATCH_IDLE_SECONDS": "0.05",
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_WEBHOOK_SECRET": SECRET,
                "TELEGRAM_API_BASE_URL": telegram.url,
                "CITYBOT_TELEGRAM_SEND_RATE": str(rate),
            },
            log_path=workdir / "serve.log",
        )
        await asyncio.to_thread(server.start, 60.0)
        try:
            await _until(lambda: broadcast_sent() >= min(recipients // 4, int(rate * 2)), 120)
            before = broadcast_sent()
            latencies: list[float] = []
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            async with aiohttp.ClientSession() as http:
                for n in range(turns):
                    answered = answers()
                    text = "menu" if n % 2 == 0 else "help"
                    asked = time.monotonic()
                    async with http.post(
                        f"{server.url}/webhooks/telegram", json=_update(n, text), headers=headers
                    ) as response:
                        assert response.status == 200, await response.text()
                    await _until(functools.partial(_more, answers, answered), answer_timeout)
                    first = min(
                        r.at
                        for r in telegram.requests
                        if r.form.get("chat_id") == resident and r.at >= asked
                    )
                    latencies.append(first - asked)
                    await asyncio.sleep(max(0.0, asked + spacing - time.monotonic()))
            after = broadcast_sent()
        finally:
            await asyncio.to_thread(server.stop, signal.SIGTERM)
        return Result(latencies, before, after, broadcast_sent(), recipients)


def _more(count: Callable[[], int], than: int) -> bool:
    return count() > than


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s")
        await asyncio.sleep(0.02)
