"""Outages: the city's back end down for an hour, Redis killed and started, PostgreSQL
restarted. Nothing is lost: after recovery every report is filed once and every message run
once, in the order sent, and answered (issue 15's suite).

Found by these tests: a PostgreSQL restarting answered webhooks 500 (asyncpg's "cannot connect
now" was no "try again" error), now 503 so the provider redelivers (``storage.session``).

Each test runs servers of its own (own_servers.py, a TCP proxy for the city), never the shared
test servers. The hour is the filer's real retry schedule (60 s, 300 s, 1800 s, then every
30 min) accelerated 1000 times through CITYBOT_FILER_RETRY_DELAYS: the city stays down until
every report has been tried as often as in an hour, then comes back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from storage.migrate import upgrade_database
from storage.models import HeldMessage, MessageLog, Open311Request, SubmissionOutbox
from tests.channels.signed import twilio_form
from tests.e2e.city import City, SmsResident, running_city
from tests.fakes.twilio_api import FakeTwilio
from tests.reliability.figures import eventually, figure
from tests.reliability.own_servers import OwnPostgres, OwnRedis
from tests.web.tcp_proxy import TcpProxy

# The filer's schedule (bot.config: 60, 300, 1800 s, the last repeated) 1000 times faster.
SCALE = 1000
SCHEDULE = (60.0, 300.0, 1800.0)
HOUR_OF_TRIES = 4  # 60 + 300 + 1800 + 1800 s: the tries an hour holds


async def test_the_city_down_for_an_hour_then_back_files_every_report_once(
    tmp_path: Path,
) -> None:
    key = {"OPEN311_API_KEY": "the-city-key"}
    (tmp_path / "city").mkdir()
    async with running_city(tmp_path / "city", workers=False, env=key) as backend:
        proxy = TcpProxy("127.0.0.1", int(backend.url.rsplit(":", 1)[1]))
        await proxy.start()
        env = key | {
            "OPEN311_ENDPOINT": f"http://127.0.0.1:{proxy.port}/open311/v2",
            "CITYBOT_FILER_RETRY_DELAYS": ",".join(str(d / SCALE) for d in SCHEDULE),
        }
        async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio, env=env) as city:
            await proxy.stop()  # the city is down
            started = time.monotonic()
            residents = [SmsResident(city, f"+2783555{n:04d}") for n in range(3)]
            references = [await r.report("pothole", "en") for r in residents]

            async def tried_for_an_hour() -> bool:
                async with city.services.session_factory() as db:
                    tries = (await db.scalars(select(SubmissionOutbox.attempts))).all()
                return len(tries) == 3 and min(tries) >= HOUR_OF_TRIES

            await eventually(tried_for_an_hour, 60, "an hour of filing tries")
            down = time.monotonic() - started
            async with backend.services.session_factory() as db:
                assert await db.scalar(select(func.count()).select_from(Open311Request)) == 0

            await proxy.start()  # the city is back
            filed = [await eventually(lambda r=r: city.filed(r), 60, r) for r in references]
            await asyncio.sleep(0.5)  # time for a second filing to show up
            async with backend.services.session_factory() as db:
                rows = (await db.scalars(select(Open311Request).order_by(Open311Request.id))).all()
            await proxy.stop()
    # One city request per report, each the one its report was given, in the order taken.
    assert sorted(str(row.id) for row in rows) == sorted(s.service_request_id for s in filed)
    order = [next(ref for ref in references if f"[ref {ref}]" in row.description) for row in rows]
    assert order == references, "filed once each, none lost, in the order taken"
    figure(
        f"outage: the city down {down:.1f} s = {HOUR_OF_TRIES} filing tries of the real "
        f"schedule (an hour), {len(references)} reports taken meanwhile; after: "
        f"{len(rows)} filed, 0 lost, 0 doubled, in the order taken"
    )


async def _post_sms(city: City, resident: SmsResident, body: str) -> tuple[str, int]:
    """One SMS as Twilio posts it (with ``#rc=3`` set, Twilio redelivers on a 5xx: so do we,
    same MessageSid, until it is taken); the sid and how many deliveries it took."""
    sid = f"SM{uuid.uuid4().hex}"
    form = twilio_form("inbound_sms.json", Body=body, From=resident.address, MessageSid=sid)
    headers, data = resident._post_twilio_form("/webhooks/twilio/sms", form)
    deadline = time.monotonic() + 60
    tries = 0
    while True:
        tries += 1
        try:
            async with city.http.post(
                city.url + "/webhooks/twilio/sms", data=data, headers=headers
            ) as r:
                if r.status == 200:
                    return sid, tries
                assert r.status == 503, await r.text()
        except TimeoutError:
            pass
        assert time.monotonic() < deadline, "never taken"
        await asyncio.sleep(0.2)


async def _logged_in_order(city: City, address: str) -> list[str]:
    await city.services.turn_loop.flush()
    async with city.services.session_factory() as db:
        return list(
            (
                await db.scalars(
                    select(MessageLog.provider_message_id)
                    .where(MessageLog.direction == "in", MessageLog.address == address)
                    .order_by(MessageLog.id)
                )
            ).all()
        )


async def _all_run_and_answered(
    city: City, sent: dict[str, list[str]], residents: list[SmsResident]
) -> None:
    async def done() -> bool:
        async with city.services.session_factory() as db:
            held = await db.scalar(select(func.count()).select_from(HeldMessage))
        if held:
            return False
        for resident in residents:
            if await _logged_in_order(city, resident.address) != sent[resident.address]:
                return False
            if len(resident.received()) < len(sent[resident.address]):
                return False
        return True

    await eventually(done, 60, "every message run, in order, and answered")


async def test_redis_killed_and_started_loses_no_message(tmp_path: Path) -> None:
    with OwnRedis(tmp_path, appendonly=True) as redis:
        async with (
            FakeTwilio() as twilio,
            running_city(tmp_path, twilio=twilio, env={"CITYBOT_REDIS_URL": redis.url}) as city,
        ):
            residents = [SmsResident(city, f"+2783666{n:04d}") for n in range(3)]
            sent: dict[str, list[str]] = {r.address: [] for r in residents}
            for resident in residents:
                sent[resident.address].append((await _post_sms(city, resident, "menu"))[0])
            redis.stop()  # kill -9
            for body in ("pothole", "1", "2"):
                for resident in residents:
                    sent[resident.address].append((await _post_sms(city, resident, body))[0])
            async with city.services.session_factory() as db:
                kept = await db.scalar(select(func.count()).select_from(HeldMessage))
            redis.start()
            await _all_run_and_answered(city, sent, residents)
    total = sum(len(s) for s in sent.values())
    figure(
        f"outage: Redis killed (kill -9, AOF) and started: {kept} SMS taken while it was away, "
        f"kept in the database; after: {total} of {total} run once each, in order, answered"
    )


async def test_postgresql_restarted_loses_no_message(tmp_path: Path) -> None:
    with OwnPostgres() as postgres:
        await upgrade_database(postgres.url)
        async with (
            FakeTwilio() as twilio,
            running_city(
                tmp_path, twilio=twilio, env={"CITYBOT_DATABASE_URL": postgres.url}
            ) as city,
        ):
            residents = [SmsResident(city, f"+2783777{n:04d}") for n in range(3)]
            sent: dict[str, list[str]] = {r.address: [] for r in residents}
            retried = 0

            async def talk(resident: SmsResident) -> None:
                nonlocal retried
                for body in ("menu", "pothole", "1", "2", "menu", "help"):
                    sid, tries = await _post_sms(city, resident, body)
                    sent[resident.address].append(sid)
                    retried += tries - 1

            talking = asyncio.gather(*(talk(r) for r in residents))
            await eventually(
                lambda: _true(sum(len(s) for s in sent.values()) >= 3), 30, "the first SMS"
            )
            await asyncio.to_thread(postgres.restart)
            await talking
            await _all_run_and_answered(city, sent, residents)
    total = sum(len(s) for s in sent.values())
    figure(
        f"outage: PostgreSQL restarted (immediate stop, WAL recovery) under traffic: "
        f"{retried} deliveries answered 503 and redelivered; after: {total} of {total} SMS "
        "run once each, in order, answered"
    )


async def _true(value: bool) -> bool:
    return value
