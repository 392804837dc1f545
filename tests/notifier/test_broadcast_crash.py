"""kill -9 a ``citybot worker`` in the middle of a broadcast, start another: no resident is sent
the broadcast twice, and every resident but those whose message was mid-call at the kill (the
``unknown`` rows, counted in the report) gets it exactly once.

Run twice: on the embedded default (the database hands out the rows) and with Redis (the rows'
ids on Redis Streams; the second worker takes over the killed one's pending entry with
XAUTOCLAIM, and the rows' states fence what it re-delivers)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.bootstrap import build_services, close_services
from bot.config import Settings
from notifier.broadcast_sending import SenderSettings
from storage.migrate import upgrade_database
from storage.models import (
    Broadcast,
    BroadcastDelivery,
    Resident,
    ResidentAddress,
    StaffAccount,
    Subscription,
)
from storage.redis import connect_redis
from storage.types import utc_now
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.web.serve_process import CITYBOT

RESIDENTS = 300


async def _seed(url: str) -> None:
    services = await build_services(Settings(database_url=url))
    try:
        async with services.session_factory() as session, session.begin():
            author = StaffAccount(email="b@city.gov", roles=["broadcaster"], password_hash="-")
            session.add(author)
            await session.flush()
            for n in range(RESIDENTS):
                resident = Resident(locale="en")
                session.add(resident)
                await session.flush()
                session.add(
                    ResidentAddress(
                        resident_id=resident.id,
                        channel="sms",
                        address=f"+2783{n:07d}",
                        last_inbound_at=utc_now(),
                    )
                )
                session.add(Subscription(resident_id=resident.id, ward="9"))
            session.add(
                Broadcast(
                    author_id=author.id,
                    title="crash",
                    texts={"en": "Water is off in ward 9."},
                    target={"wards": ["9"], "everyone": False},
                    topic="water",
                    channels=["sms"],
                    urgency="emergency",
                    state="scheduled",
                )
            )
    finally:
        await close_services(services)


async def _worker(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    worker = await asyncio.create_subprocess_exec(
        str(CITYBOT),
        "worker",
        "--only",
        "broadcasts",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert worker.stdout is not None
    line = await asyncio.wait_for(worker.stdout.readline(), 30)
    assert line.decode().strip() == "citybot worker is running: broadcasts"
    return worker


async def _until(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture(params=["database", "streams"])
def queue_redis(request: pytest.FixtureRequest) -> str | None:
    """The Redis the workers share (its ids on streams), or None: the database's claims."""
    if request.param == "database":
        return None
    return str(request.getfixturevalue("redis_url"))


async def test_a_killed_worker_never_sends_a_broadcast_twice(
    tmp_path: Path, queue_redis: str | None
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3"
    if queue_redis is not None:
        redis = connect_redis(queue_redis)
        await redis.flushdb()  # no entries of an earlier run on this test database
        await redis.aclose()
    await upgrade_database(url)
    await _seed(url)
    async with FakeTwilio() as twilio:
        twilio.answer_delay = 0.01  # messages in flight when the worker dies
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CITYBOT_")},
            "CITYBOT_DATABASE_URL": url,
            "CITYBOT_LOG_LEVEL": "WARNING",
            "CITYBOT_QUIET_HOURS": "off",
            "CITYBOT_DISPATCH_IDLE_SECONDS": "0.05",
            # Short, so the second worker takes over soon; a send is cut off at half of it,
            # which a loaded CI machine's SQLite commits must not reach.
            "CITYBOT_BROADCAST_LEASE_SECONDS": "6",
            "CITYBOT_TWILIO_SEND_RATE": "1000",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": "+27211234567",
            "TWILIO_API_BASE_URL": twilio.url,
        }
        if queue_redis is not None:
            env["CITYBOT_REDIS_URL"] = queue_redis

        def arrived() -> list[str]:
            return [r.form["To"] for r in twilio.requests if "To" in r.form]

        async def some_arrived() -> bool:
            return len(arrived()) >= 60

        first = await _worker(env, tmp_path)
        try:
            await _until(some_arrived, 60)
            first.send_signal(signal.SIGKILL)
            await first.wait()
        finally:
            if first.returncode is None:
                first.kill()
        at_kill = len(arrived())
        assert at_kill < RESIDENTS, "the broadcast finished before the kill"

        services = await build_services(Settings(database_url=url, redis_url=queue_redis))

        async def sent() -> bool:
            async with services.session_factory() as session:
                return await session.scalar(select(Broadcast.state)) == "sent"

        async def nothing_pending() -> bool:
            # The killed worker's entries: taken over once their lease ends (their rows may all
            # be settled by then, through the table), then acknowledged.
            if queue_redis is None:
                return True
            redis = connect_redis(queue_redis)
            try:
                (group,) = await redis.xinfo_groups("citybot:{s0}:dispatch:sms")
            finally:
                await redis.aclose()
            return bool(group["pending"] == 0)

        second = await _worker(env, tmp_path)
        try:
            await _until(sent, 90)
            await _until(nothing_pending, 60)
            await asyncio.sleep(0.3)  # time for any second copy to show up
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 20) == 0
        finally:
            if second.returncode is None:
                second.kill()
        try:
            async with services.session_factory() as session:
                states = Counter(
                    dict(
                        (
                            await session.execute(
                                select(BroadcastDelivery.state, func.count()).group_by(
                                    BroadcastDelivery.state
                                )
                            )
                        ).all()
                    )
                )
        finally:
            await close_services(services)
    copies = Counter(arrived())
    if queue_redis is not None:
        redis = connect_redis(queue_redis)
        try:
            (group,) = await redis.xinfo_groups("citybot:{s0}:dispatch:sms")
        finally:
            await redis.aclose()
        # The streams carried the broadcast (an entry per 20 rows), and every entry was settled.
        assert group["entries-read"] >= RESIDENTS // 20 and group["pending"] == 0
    assert max(copies.values()) == 1, "a resident got the broadcast twice"
    assert set(states) <= {"sent", "unknown"} and sum(states.values()) == RESIDENTS
    # Every message the worker knew it sent, and none other, arrived once; an "unknown" one was
    # mid-call: it arrived, or the provider never saw it.
    assert len(copies) >= states["sent"] and len(copies) <= RESIDENTS
    # At most the batches the worker had in flight, side by side.
    in_flight = SenderSettings()
    assert states["unknown"] <= in_flight.batch_size * in_flight.batches_in_flight
    print(f"killed after {at_kill} arrived; {dict(states)}; {len(copies)} arrived in all")
