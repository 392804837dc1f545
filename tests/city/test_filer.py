"""The filer against the built-in server over HTTP, with faults injected: every report filed once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from city.filer import Filer, FilerSettings
from city.open311.client import Open311Backend, reference_marker
from city.open311.server import PREFIX, add_open311_routes
from forms_runtime.loader import standard_forms
from notifier.dispatcher import DispatchSettings, NotificationDispatcher
from notifier.ports import ResidentMessage
from notifier.status_notices import queue_filed
from storage.models import (
    FilingAttempt,
    Open311Request,
    Resident,
    ResidentNotification,
    Submission,
    SubmissionOutbox,
)
from storage.session import create_engine, create_sessionmaker
from tests.pothole_report import POTHOLE_ANSWERS, pothole_submission
from tests.storage.databases import postgres_database, sqlite_database

FAST = FilerSettings(retry_delays=(0.0,), jitter=0.0, alert_after=3, lease_seconds=30.0)


@dataclass
class Faults:
    """Behaviours for the next POSTs to requests, in order; then, ``down`` answers everything 503."""

    posts: list[str] = field(default_factory=list)
    down: bool = False
    seen_posts: int = 0
    # References whose every POST the back end fails (HTTP 500): a report it cannot take.
    failing: set[str] = field(default_factory=set)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503, text="down for maintenance")
        if request.method != "POST" or not request.path.startswith(f"{PREFIX}/requests"):
            return await handler(request)
        self.seen_posts += 1
        description = str((await request.post()).get("description", ""))
        if any(reference_marker(r) in description for r in self.failing):
            return web.Response(status=500, text="cannot store this one")
        fault = self.posts.pop(0) if self.posts else "ok"
        if fault == "500_before":
            return web.Response(status=500, text="boom")
        if fault == "hang_after":
            await handler(request)
            await asyncio.sleep(3600)
        response = await handler(request)
        if fault == "500_after":  # stored, but the answer says it failed
            return web.Response(status=500, text="boom")
        if fault == "timeout_after":  # stored, but the answer never comes in time
            await asyncio.sleep(3)
        if fault == "invalid_json":  # stored, but the answer cannot be read
            return web.Response(text='[{"service_request_id": ', content_type="application/json")
        if fault == "neither":  # stored, but the answer has neither id nor token
            return web.json_response([{"service_notice": "thanks"}])
        return response


@dataclass
class World:
    url: str
    sessionmaker: async_sessionmaker[AsyncSession]
    faults: Faults
    database_url: str
    sent: list[ResidentMessage] = field(default_factory=list)

    @asynccontextmanager
    async def filer(self, settings: FilerSettings = FAST, **options: Any) -> AsyncIterator[Filer]:
        """A filer on the fake back end, its HTTP client closed when the block ends."""
        # Short, so a "timeout_after" fault costs little, but well above what an answer takes
        # on a loaded machine: at 0.5 s a slow ordinary post counted as one more failure.
        backend = Open311Backend(self.url, timeout=options.pop("timeout", 1.5))
        try:
            yield Filer(
                self.sessionmaker,
                backend,
                standard_forms(),
                settings=settings,
                registry=CollectorRegistry(),
                on_filed=queue_filed,
                **options,
            )
        finally:
            await backend.close()

    async def _send(self, message: ResidentMessage) -> None:
        self.sent.append(message)

    async def dispatch(self, at: datetime | None = None) -> None:
        """Send every notification queued by ``at`` (now) to ``sent``, the resident's side."""
        dispatcher = NotificationDispatcher(
            self.sessionmaker,
            self._send,
            settings=DispatchSettings(retry_delays=(0.0,), jitter=0.0),
            registry=CollectorRegistry(),
            clock=lambda: at or datetime.now(UTC),
        )
        while await dispatcher.run_once():
            pass

    async def add(self, count: int, *, locale: str = "en", opted_out: bool = False) -> list[str]:
        from datetime import UTC, datetime

        references = []
        async with self.sessionmaker() as session, session.begin():
            resident = Resident(
                locale=locale, opted_out_at=datetime.now(UTC) if opted_out else None
            )
            session.add(resident)
            await session.flush()
            start = await session.scalar(select(func.count()).select_from(Submission)) or 0
            for i in range(count):
                reference = f"CT-T{start + i:05d}"
                submission = Submission(
                    **pothole_submission(
                        reference,
                        resident_id=resident.id,
                        locale=locale,
                        ward="99",
                        area_type="informal_settlement",
                    )
                )
                session.add(submission)
                await session.flush()
                session.add(SubmissionOutbox(submission_id=submission.id))
                references.append(reference)
        return references

    async def assert_filed_exactly_once(self, references: list[str]) -> None:
        async with self.sessionmaker() as session:
            rows = (await session.scalars(select(Open311Request))).all()
            submissions = (await session.scalars(select(Submission))).all()
            pending = await session.scalar(
                select(func.count())
                .select_from(SubmissionOutbox)
                .where(SubmissionOutbox.done_at.is_(None))
            )
        for reference in references:
            matches = [r for r in rows if reference_marker(reference) in r.description]
            assert len(matches) == 1, f"{reference} filed {len(matches)} times"
        assert len(rows) == len(references)
        by_id = {r.service_request_id: r for r in rows}
        for submission in submissions:
            assert submission.status == "filed"
            row = by_id[submission.service_request_id or ""]
            assert reference_marker(submission.reference) in row.description
        assert pending == 0


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with sqlite_database(tmp_path) as url, _world(url) as w:
        yield w


@asynccontextmanager
async def _world(database_url: str) -> AsyncIterator[World]:
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    faults = Faults()
    app = web.Application(middlewares=[faults.middleware])
    add_open311_routes(app, sessionmaker, standard_forms(), api_key="")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield World(str(server.make_url(PREFIX)), sessionmaker, faults, database_url)
    finally:
        await server.close()
        await engine.dispose()


async def drain(*filers: Filer, rounds: int = 30) -> None:
    """Run the filers side by side until nothing is left to do."""
    for _ in range(rounds):
        handled = await asyncio.gather(*(f.run_once() for f in filers))
        if not any(handled):
            return
    raise AssertionError("the outbox did not drain")


async def test_files_in_order_and_tells_the_resident(world: World) -> None:
    references = await world.add(3, locale="en")
    async with world.filer() as filer:
        await drain(filer)
    await world.assert_filed_exactly_once(references)
    await world.dispatch()
    async with world.sessionmaker() as session:
        ids = [
            s.service_request_id or ""
            for s in (await session.scalars(select(Submission).order_by(Submission.id))).all()
        ]
    assert ids == sorted(ids, key=int)  # filed in the order they were stored
    assert [m.reference for m in world.sent] == references
    assert world.sent[0].channel == "sms" and world.sent[0].purpose == "report_filed"
    assert ids[0] in world.sent[0].text and references[0] in world.sent[0].text
    assert filer.filed._value.get() == 3


async def test_opted_out_residents_are_not_told(world: World) -> None:
    references = await world.add(1, opted_out=True)
    async with world.filer() as filer:
        await drain(filer)
    await world.assert_filed_exactly_once(references)
    await world.dispatch()
    assert world.sent == []


@pytest.mark.parametrize(
    "faults",
    [
        ["500_before", "500_before"],
        ["500_after"],
        ["timeout_after"],
        ["invalid_json", "500_after", "neither"],
    ],
)
async def test_faults_never_double_or_lose_a_report(world: World, faults: list[str]) -> None:
    references = await world.add(3)
    world.faults.posts = list(faults)
    async with world.filer() as filer:
        await drain(filer)
    await world.assert_filed_exactly_once(references)
    async with world.sessionmaker() as session:
        attempts = (await session.scalars(select(FilingAttempt).order_by(FilingAttempt.id))).all()
    failed = [a for a in attempts if a.outcome in ("retry", "away")]
    assert len(failed) == len(faults)
    assert all(a.reason and a.finished_at for a in failed)
    assert {a.outcome for a in attempts} <= {"filed", "found", "retry", "away", "held"}


async def test_back_end_down_for_a_while_then_everything_arrives(world: World, caplog) -> None:
    references = await world.add(4)
    world.faults.down = True
    async with world.filer() as filer:
        for _ in range(4):
            await filer.run_once()
        async with world.sessionmaker() as session:
            outbox = (await session.scalars(select(SubmissionOutbox))).all()
        assert all(
            o.done_at is None and o.attempts == 4 and "503" in (o.last_error or "") for o in outbox
        )
        # Two reports tried each time (the second confirms the city is away; the others wait,
        # not tried): attempts 3 and 4 of those two alert.
        assert filer.alerts._value.get() == 2 * 2
        assert "failed to file 4 times" in caplog.text
        world.faults.down = False
        await drain(filer)
    await world.assert_filed_exactly_once(references)


async def _filed_order(world: World, references: list[str]) -> list[str]:
    async with world.sessionmaker() as session:
        rows = (await session.scalars(select(Open311Request).order_by(Open311Request.id))).all()
    return [next(r for r in references if reference_marker(r) in row.description) for row in rows]


async def test_after_an_outage_reports_are_filed_in_the_order_taken(world: World) -> None:
    from datetime import timedelta

    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    settings = FilerSettings(retry_delays=(60.0, 300.0), jitter=0.0, alert_after=9)
    world.faults.down = True
    first = await world.add(1)
    async with world.filer(settings, clock=lambda: now[0]) as filer:
        assert await filer.run_once() == 1  # tried, the city is away: back at 00:01
        now[0] += timedelta(seconds=30)
        later = await world.add(2)  # taken while the city is away: they wait for the first
        assert await filer.run_once() == 0
        now[0] += timedelta(seconds=31)
        assert await filer.run_once() == 3  # one tried, then one more: away; the third waits
        async with world.sessionmaker() as session:
            outbox = (await session.scalars(select(SubmissionOutbox))).all()
        assert len({o.next_attempt_at for o in outbox}) == 1, "the queue backs off as one"
        assert outbox[0].next_attempt_at == now[0] + timedelta(seconds=300)  # the first's 2nd
        world.faults.down = False
        now[0] += timedelta(seconds=300)
        await drain(filer)
    await world.assert_filed_exactly_once(first + later)
    assert await _filed_order(world, first + later) == first + later


async def test_a_report_the_city_cannot_take_holds_no_one_up(world: World) -> None:
    references = await world.add(3)
    world.faults.failing = {references[0]}
    settings = FilerSettings(retry_delays=(3600.0,), jitter=0.0)
    async with world.filer(settings) as filer:
        assert await filer.run_once() == 3
    assert await _filed_order(world, references) == references[1:]
    async with world.sessionmaker() as session:
        attempts = (await session.scalars(select(FilingAttempt).order_by(FilingAttempt.id))).all()
        pending = (
            await session.scalars(
                select(SubmissionOutbox).where(SubmissionOutbox.done_at.is_(None))
            )
        ).all()
    assert [a.outcome for a in attempts] == ["away", "filed", "filed"]
    assert len(pending) == 1 and "500" in (pending[0].last_error or "")


async def test_backoff_schedule_with_jitter(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    await world.add(1)
    world.faults.down = True
    now = datetime(2030, 1, 1, tzinfo=UTC)
    async with world.filer(FilerSettings(jitter=0.2), clock=lambda: now) as filer:
        waits = []
        for _ in range(5):
            assert await filer.run_once() == 1
            async with world.sessionmaker() as session:
                outbox = (await session.scalars(select(SubmissionOutbox))).one()
            waits.append((outbox.next_attempt_at - now).total_seconds())
            assert await filer.run_once() == 0  # not due yet
            now = outbox.next_attempt_at
    for wait, base in zip(waits, [60, 300, 1800, 1800, 1800], strict=True):
        assert base * 0.8 <= wait <= base * 1.2
    assert timedelta(seconds=waits[0]) < timedelta(minutes=2)


async def test_a_refused_report_is_parked_not_retried(world: World) -> None:
    references = await world.add(1)
    async with world.sessionmaker() as session, session.begin():
        submission = (await session.scalars(select(Submission))).one()
        submission.answers = {**POTHOLE_ANSWERS, "kind": "volcano"}
    async with world.filer() as filer:
        await drain(filer)
    async with world.sessionmaker() as session:
        submission = (await session.scalars(select(Submission))).one()
        outbox = (await session.scalars(select(SubmissionOutbox))).one()
    assert submission.status == "rejected" and submission.reference == references[0]
    assert outbox.done_at is not None and "must be one of" in (outbox.last_error or "")
    assert filer.alerts._value.get() == 1


async def _two_workers(world: World) -> None:
    references = await world.add(40)
    world.faults.posts = ["500_after", "timeout_after", "500_before"]
    async with world.filer() as one, world.filer() as two:
        await drain(one, two)
    await world.assert_filed_exactly_once(references)


async def test_two_workers_at_once_sqlite(world: World) -> None:
    await _two_workers(world)


@pytest.mark.postgres
async def test_two_workers_at_once_postgres() -> None:
    async with postgres_database() as url, _world(url) as world:
        await _two_workers(world)


FILER_PROCESS = """
import asyncio, sys
from prometheus_client import CollectorRegistry
from storage.session import create_engine, create_sessionmaker
from city.filer import Filer, FilerSettings
from notifier.status_notices import queue_filed
from city.open311.client import Open311Backend
from forms_runtime.loader import standard_forms

async def main():
    engine = create_engine(sys.argv[1])
    filer = Filer(create_sessionmaker(engine), Open311Backend(sys.argv[2], timeout=600),
                  standard_forms(), settings=FilerSettings(retry_delays=(0.0,), jitter=0.0, lease_seconds=1.0),
                  registry=CollectorRegistry(), on_filed=queue_filed)
    print("filing", flush=True)
    await filer.run_once()

asyncio.run(main())
"""


async def test_kill_9_in_the_middle_of_a_post(world: World) -> None:
    references = await world.add(2)
    world.faults.posts = ["hang_after"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FILER_PROCESS,
        world.database_url,
        world.url,
        stdout=asyncio.subprocess.PIPE,
        cwd=os.getcwd(),
    )
    try:
        for _ in range(200):  # the POST has reached the server and been stored
            if world.faults.seen_posts:
                break
            await asyncio.sleep(0.05)
        assert world.faults.seen_posts == 1
        await asyncio.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL
    async with world.sessionmaker() as session:
        attempts = (await session.scalars(select(FilingAttempt))).all()
    assert [a.outcome for a in attempts] == [
        "in_flight",
        "in_flight",
    ]  # claimed both, died in the 1st
    await asyncio.sleep(1.1)  # the dead worker's lease runs out
    async with world.filer() as filer:
        await drain(filer)
    await world.assert_filed_exactly_once(references)
    async with world.sessionmaker() as session:
        outcomes = sorted(a.outcome for a in (await session.scalars(select(FilingAttempt))).all())
    assert outcomes == ["filed", "found", "in_flight", "in_flight"]


FILER_THEN_DIE = """
import asyncio, os, signal, sys
from prometheus_client import CollectorRegistry
from storage.session import create_engine, create_sessionmaker
from city.filer import Filer, FilerSettings
from notifier.status_notices import queue_filed
from city.open311.client import Open311Backend
from forms_runtime.loader import standard_forms

async def main():
    engine = create_engine(sys.argv[1])
    filer = Filer(create_sessionmaker(engine), Open311Backend(sys.argv[2]), standard_forms(),
                  settings=FilerSettings(retry_delays=(0.0,), jitter=0.0),
                  registry=CollectorRegistry(), on_filed=queue_filed)
    assert await filer.run_once() == 1
    # Committed: the report is filed. The process dies before anything is sent.
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_a_filer_killed_after_filing_still_gets_the_resident_told(world: World) -> None:
    [reference] = await world.add(1, locale="af")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FILER_THEN_DIE, world.database_url, world.url, cwd=os.getcwd()
    )
    assert await process.wait() == -signal.SIGKILL
    await world.assert_filed_exactly_once([reference])
    async with world.sessionmaker() as session:
        [row] = (await session.scalars(select(ResidentNotification))).all()
    assert (row.state, row.purpose, row.reference, row.locale) == (
        "pending",
        "report_filed",
        reference,
        "af",
    )
    assert world.sent == []
    await world.dispatch()
    [message] = world.sent
    assert message.reference == reference and message.purpose == "report_filed"
    await world.dispatch()
    assert len(world.sent) == 1
