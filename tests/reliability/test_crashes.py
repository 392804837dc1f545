"""Crashes: kill -9 of serve and of each worker at random moments under load, on SQLite and on
PostgreSQL + Redis: 0 accepted messages unanswered, 0 reports lost, 0 filed twice at the city,
0 broadcast messages sent twice (issue 15's suite).

The layout is the README's scaled-out one: ``citybot serve --no-workers`` (and
``--no-replies`` with Redis, where ``citybot worker --only replies`` sends them), beside a
worker process per kind: ``filer``, ``dispatcher`` (with the status notices) and
``broadcasts``. The built-in Open311 server in serve is the city. Under load: residents' SMS
(a provider that redelivers what was not taken, as Twilio does with ``#rc=3``), reports
stored for filing, and a broadcast to 100 residents every round. Each round kills every kind
once, at a random moment, and starts it again. CI: 1 round; ``make chaos``: 50.

Not counted as doubled: a resident's reply sent again after a kill between the send and its
commit (replies are at least once, docs/reliability.md), and a broadcast message mid-call at
a kill, which is never resent and is counted ``unknown`` (at most once).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from twilio.request_validator import RequestValidator

from conversations.submissions import store_submission
from forms_runtime.effects import Submit
from forms_runtime.loader import standard_forms
from storage.models import (
    Broadcast,
    BroadcastDelivery,
    Open311Request,
    Resident,
    ResidentAddress,
    StaffAccount,
    Submission,
    Subscription,
)
from storage.session import create_engine
from storage.types import utc_now
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.reliability.figures import chaos, eventually, figure
from tests.storage.databases import postgres_database, sqlite_database
from tests.web.serve_process import CITYBOT, ServeProcess

ROUNDS = chaos(1, 50)
# Seconds between residents' new SMS, and between new reports: load, bounded for CI.
SMS_EVERY = chaos(0.3, 0.1)
REPORT_EVERY = chaos(0.5, 0.15)
SUBSCRIBERS = 100
CITY = "+27211234567"
POTHOLE = standard_forms()["pothole"]
WORKERS = {"filer": "filer", "dispatcher": "dispatcher,status_notices", "broadcasts": "broadcasts"}


class Worker:
    """One ``citybot worker --only ...`` process, to kill and start again."""

    def __init__(self, only: str, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.only, self.env, self.cwd, self.log = only, env, cwd, log
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [str(CITYBOT), "worker", "--only", self.only],
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line.startswith("citybot worker is running"), line

    def kill_hard(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Load:
    """What the residents and the city's staff did, to check against what happened."""

    accepted: dict[str, str] = field(default_factory=dict)  # resident -> MessageSid taken
    redelivered: int = 0
    references: list[str] = field(default_factory=list)
    broadcasts: list[str] = field(default_factory=list)


async def _seed_subscribers(engine: AsyncEngine) -> int:
    async with async_sessionmaker(engine)() as session, session.begin():
        author = StaffAccount(email="b@city.gov", roles=["broadcaster"], password_hash="-")
        session.add(author)
        await session.flush()
        for n in range(SUBSCRIBERS):
            resident = Resident(locale="en")
            session.add(resident)
            await session.flush()
            session.add(
                ResidentAddress(
                    resident_id=resident.id,
                    channel="sms",
                    address=f"+2786{n:07d}",
                    last_inbound_at=utc_now(),
                )
            )
            session.add(Subscription(resident_id=resident.id, ward="9"))
        return author.id


async def _broadcast(engine: AsyncEngine, author: int, text: str) -> None:
    async with async_sessionmaker(engine)() as session, session.begin():
        session.add(
            Broadcast(
                author_id=author,
                title=text[:40],
                texts={"en": text},
                target={"wards": ["9"], "everyone": False},
                topic="water",
                channels=["sms"],
                urgency="emergency",
                state="scheduled",
            )
        )


async def _report(engine: AsyncEngine, n: int) -> str:
    answers = {
        "location": {"lat": -34.0363, "lon": 18.6776, "address": f"{n} Crash Road"},
        "kind": "sunken",
        "danger": False,
        "callback": False,
    }
    effect = Submit("pothole", 1, "ROADS-POTHOLE", "en", answers, "Thanks.")
    async with engine.begin() as db:
        return await store_submission(
            db, effect, POTHOLE, resident_id=None, channel="sms", now=utc_now()
        )


async def _sms(http: aiohttp.ClientSession, url: str, number: str, load: Load) -> None:
    """One SMS, redelivered (same MessageSid) until the server takes it, as Twilio does."""
    path = "/webhooks/twilio/sms"
    sid = "SM" + uuid.uuid4().hex
    form = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": number, "To": CITY}
    form |= {"Body": "menu", "NumMedia": "0"}
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        # Signed for the public URL, which is where serve listens: the workers find the
        # built-in Open311 server (the city) there.
        "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url + path, form),
    }
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.post(url + path, data=urlencode(form), headers=headers) as r:
                if r.status == 200:
                    load.accepted[number] = sid
                    return
        load.redelivered += 1
        await asyncio.sleep(0.3)
    raise AssertionError(f"an SMS from {number} was never taken")


@asynccontextmanager
async def _database(kind: str, tmp_path: Path, postgres: Callable[[], str]) -> AsyncIterator[str]:
    made: AbstractAsyncContextManager[str] = (
        sqlite_database(tmp_path) if kind == "sqlite" else postgres_database(postgres())
    )
    async with made as url:
        yield url


@pytest.mark.parametrize("layout", ["sqlite", "postgres+redis"])
async def test_random_kills_lose_nothing_and_double_nothing(
    layout: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with_redis = layout != "sqlite"
    redis_url = request.getfixturevalue("redis_url") if with_redis else ""
    postgres = (lambda: str(request.getfixturevalue("postgres_url"))) if with_redis else str
    rng = random.Random()
    run = rng.randrange(10**6)
    load = Load()
    async with _database(layout, tmp_path, postgres) as url, FakeTwilio() as twilio:
        twilio.answer_delay = 0.005  # messages in flight when something dies
        engine = create_engine(url)
        author = await _seed_subscribers(engine)
        env = {
            "CITYBOT_DATABASE_URL": url,
            "CITYBOT_SESSION_SECRET": "crashes",
            "CITYBOT_QUIET_HOURS": "off",
            "CITYBOT_RATE_LIMIT_PER_SECOND": "1000",
            "CITYBOT_RATE_LIMIT_BURST": "1000",
            "CITYBOT_FILER_IDLE_SECONDS": "0.1",
            "CITYBOT_FILER_RETRY_DELAYS": "0.5",
            # A filer killed mid-filing holds its reports this long (120 s by default).
            "CITYBOT_FILER_LEASE_SECONDS": "5",
            "CITYBOT_DISPATCH_IDLE_SECONDS": "0.1",
            "CITYBOT_BROADCAST_LEASE_SECONDS": "2",
            "CITYBOT_REPLY_CLAIM_SECONDS": "1",
            "CITYBOT_TWILIO_SEND_RATE": "1000",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": CITY,
            "TWILIO_API_BASE_URL": twilio.url,
        }
        if with_redis:
            env["CITYBOT_REDIS_URL"] = redis_url
        args = ("--no-workers", "--no-replies") if with_redis else ("--no-workers",)
        serve = ServeProcess(tmp_path, env, args=args, log_path=tmp_path / "serve.log")
        serve.env["CITYBOT_PUBLIC_URL"] = serve.url
        kinds = dict(WORKERS) | ({"replies": "replies"} if with_redis else {})
        workers = {
            kind: Worker(only, serve.env, tmp_path, tmp_path / f"{kind}.log")
            for kind, only in kinds.items()
        }
        kills: Counter[str] = Counter()
        stop_load = asyncio.Event()
        try:
            await asyncio.to_thread(serve.start, 60)
            for worker in workers.values():
                await asyncio.to_thread(worker.start)

            async def residents() -> None:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
                    n = 0
                    pending: set[asyncio.Task[None]] = set()
                    while not stop_load.is_set():
                        number = f"+2784{run:06d}{n:04d}"[:16]
                        n += 1
                        task = asyncio.create_task(_sms(http, serve.url, number, load))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                        await asyncio.sleep(SMS_EVERY)
                    await asyncio.gather(*pending)

            async def city_staff() -> None:
                n = 0
                while not stop_load.is_set():
                    with contextlib.suppress(Exception):  # the database is ours, not killed
                        load.references.append(await _report(engine, n))
                        n += 1
                    await asyncio.sleep(REPORT_EVERY)

            began = time.monotonic()
            traffic = asyncio.gather(residents(), city_staff())
            for round_ in range(ROUNDS):
                text = f"Round {round_}: water is off in ward 9 ({run})."
                await _broadcast(engine, author, text)
                load.broadcasts.append(text)
                for kind in rng.sample(["serve", *workers], len(workers) + 1):
                    await asyncio.sleep(rng.uniform(0.2, 1.2))
                    if kind == "serve":
                        await asyncio.to_thread(serve.kill_hard)
                        await asyncio.to_thread(serve.start, 60)
                    else:
                        await asyncio.to_thread(workers[kind].kill_hard)
                        await asyncio.to_thread(workers[kind].start)
                    kills[kind] += 1
            stop_load.set()
            await traffic

            # -- everything settles, with every process running ---------------------------
            menu: set[str] = set()

            def bodies(number: str) -> set[str]:
                return {m.form["Body"] for m in twilio.messages() if m.form.get("To") == number}

            async def answered() -> bool:
                nonlocal menu
                menu = menu or bodies(next(iter(load.accepted)))
                return all(bodies(n) >= menu for n in load.accepted)

            await eventually(answered, 90, "an answer to every accepted SMS")

            async def filed() -> bool:
                async with engine.connect() as db:
                    waiting = await db.scalar(
                        select(func.count())
                        .select_from(Submission)
                        .where(Submission.service_request_id.is_(None))
                    )
                return waiting == 0

            await eventually(filed, 90, "every report filed")

            async def broadcasts_done() -> bool:
                async with engine.connect() as db:
                    states = set((await db.scalars(select(Broadcast.state))).all())
                return states <= {"sent"}

            await eventually(broadcasts_done, 90, "every broadcast sent")
            await asyncio.sleep(1.0)  # time for any second copy to show up
            took = time.monotonic() - began
        finally:
            stop_load.set()
            for worker in workers.values():
                worker.stop()
            if serve.process is not None and serve.process.poll() is None:
                serve.stop()

        async with engine.connect() as db:
            descriptions = (await db.scalars(select(Open311Request.description))).all()
            deliveries = Counter(
                dict(
                    (
                        await db.execute(
                            select(BroadcastDelivery.state, func.count()).group_by(
                                BroadcastDelivery.state
                            )
                        )
                    ).all()
                )
            )
            submissions = (await db.scalars(select(Submission.reference))).all()
            failed_to = set(
                (
                    await db.scalars(
                        select(ResidentAddress.address)
                        .join(
                            BroadcastDelivery,
                            BroadcastDelivery.resident_id == ResidentAddress.resident_id,
                        )
                        .where(BroadcastDelivery.state == "failed")
                    )
                ).all()
            )
            why_failed = Counter(
                (e or "")[:120]
                for e in (
                    await db.scalars(
                        select(BroadcastDelivery.error).where(BroadcastDelivery.state == "failed")
                    )
                ).all()
            )
        await engine.dispose()

    at_city = Counter(ref for d in descriptions for ref in load.references if f"[ref {ref}]" in d)
    assert sorted(submissions) == sorted(load.references), "a report was lost"
    assert set(at_city) == set(load.references), "a report never reached the city"
    assert set(at_city.values()) == {1}, f"filed twice: {[r for r, n in at_city.items() if n > 1]}"
    broadcast_sent = Counter(
        (m.form["To"], text)
        for m in twilio.messages()
        for text in load.broadcasts
        if text in m.form["Body"]
    )
    assert broadcast_sent, "no broadcast message was counted"
    # "failed" must mean not delivered: resend-failed sends those again.
    delivered_failed = failed_to & {to for to, _ in broadcast_sent}
    assert not delivered_failed, f"{len(delivered_failed)} marked failed were delivered"
    unknown = deliveries["unknown"]
    assert max(broadcast_sent.values(), default=1) == 1, "a broadcast message was sent twice"
    figure(
        f"crashes ({layout}): {sum(kills.values())} kill -9 ({dict(kills)}) under load; "
        f"{len(load.accepted)} SMS accepted ({load.redelivered} redeliveries while down), 0 "
        f"unanswered; {len(load.references)} reports, 0 lost, 0 filed twice; "
        f"{len(load.broadcasts)} broadcasts to {SUBSCRIBERS}: {sum(broadcast_sent.values())} "
        f"sent, 0 twice, {unknown} unknown (mid-call at a kill, never resent; deliveries "
        f"{dict(deliveries)}, failed: {dict(why_failed.most_common(3))}); {took:.0f} s"
    )
