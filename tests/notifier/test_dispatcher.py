"""The dispatcher with the real ResidentDelivery and SMS channel against the fake Twilio: every
stored notification reaches its resident once, retried through outages, held in quiet hours,
never sent to an opted-out resident, shared safely by two dispatchers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.base import BaseChannel
from channels.twilio_common import TwilioAccount
from channels.twilio_sms import SmsChannel
from notifier.delivery import ResidentDelivery
from notifier.dispatcher import DispatchSettings, NotificationDispatcher
from notifier.outbox import SUPERSEDED, enqueue
from notifier.ports import NotDelivered, ResidentMessage
from notifier.quiet_hours import QuietHours
from storage.models import Resident, ResidentAddress, ResidentNotification, Submission
from storage.session import create_engine, create_sessionmaker
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.pothole_report import pothole_submission
from tests.storage.databases import postgres_database, sqlite_database

NOON = datetime(2030, 6, 3, 10, 0, tzinfo=UTC)  # 12:00 in Johannesburg
NIGHT = datetime(2030, 6, 3, 21, 30, tzinfo=UTC)  # 23:30 in Johannesburg
FAST = DispatchSettings(retry_delays=(30.0,), jitter=0.0, max_attempts=5)
DOWN = {"code": 20500, "message": "Internal Server Error", "status": 503}


@dataclass
class Clock:
    now: datetime = NOON

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Outbox:
    sessions: async_sessionmaker[AsyncSession]
    twilio: FakeTwilio
    channels: dict[str, BaseChannel]
    clock: Clock = field(default_factory=Clock)

    def dispatcher(
        self, settings: DispatchSettings = FAST, *, send: Any = None
    ) -> NotificationDispatcher:
        # One provider try per attempt: the outbox's own retries are what is under test.
        delivery = ResidentDelivery(self.sessions, self.channels, attempts=1)
        return NotificationDispatcher(
            self.sessions,
            send or delivery,
            settings=settings,
            registry=CollectorRegistry(),
            clock=self.clock,
        )

    async def resident(self, phone: str = "+27831234567") -> int:
        async with self.sessions() as db, db.begin():
            resident = Resident(locale="en")
            db.add(resident)
            await db.flush()
            db.add(ResidentAddress(resident_id=resident.id, channel="sms", address=phone))
            return resident.id

    async def submission(self, resident_id: int, reference: str = "CT-7KQ4XM") -> int:
        async with self.sessions() as db, db.begin():
            row = Submission(**pothole_submission(reference, resident_id=resident_id))
            db.add(row)
            await db.flush()
            return row.id

    async def enqueue(
        self,
        resident_id: int,
        text: str,
        *,
        purpose: str = "status_update",
        submission_id: int | None = None,
        collapse: bool = False,
    ) -> int:
        message = ResidentMessage(
            resident_id=resident_id,
            channel="sms",
            locale="en",
            text=text,
            purpose=purpose,
            reference="CT-7KQ4XM",
            template_variables={"reference": "CT-7KQ4XM", "status": "closed"},
        )
        async with self.sessions() as db, db.begin():
            row = await enqueue(
                db, message, submission_id=submission_id, now=self.clock(), collapse=collapse
            )
            await db.flush()
            return row.id

    async def rows(self) -> list[ResidentNotification]:
        async with self.sessions() as db:
            query = select(ResidentNotification).order_by(ResidentNotification.id)
            return list((await db.scalars(query)).all())

    def bodies(self) -> list[str]:
        return [m.form["Body"] for m in self.twilio.messages()]


@asynccontextmanager
async def _outbox(database_url: str) -> AsyncIterator[Outbox]:
    async with FakeTwilio() as twilio:
        engine = create_engine(database_url)
        account = TwilioAccount(
            ACCOUNT_SID, AUTH_TOKEN, "https://bot.city.example", api_base_url=twilio.url
        )
        sms = SmsChannel(account, "+27211234567", per_second=1000)
        try:
            yield Outbox(create_sessionmaker(engine), twilio, {"sms": sms})
        finally:
            await sms.close()
            await engine.dispose()


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    async with sqlite_database(tmp_path) as url, _outbox(url) as o:
        yield o


async def drain(*dispatchers: NotificationDispatcher, rounds: int = 50) -> None:
    """Run the dispatchers side by side until none takes anything."""
    for _ in range(rounds):
        if not any(await asyncio.gather(*(d.run_once() for d in dispatchers))):
            return
    raise AssertionError("the outbox did not drain")


async def test_a_stored_message_goes_out_once(outbox: Outbox) -> None:
    resident = await outbox.resident()
    await outbox.enqueue(resident, "Closed.", purpose="report_filed")
    dispatcher = outbox.dispatcher()
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0
    assert outbox.bodies() == ["Closed."]
    [row] = await outbox.rows()
    assert (row.state, row.attempts, row.sent_at, row.claimed_until) == ("sent", 1, NOON, None)
    assert row.text == "" and row.template_variables == {}  # the message log keeps what was said
    assert dispatcher.settled.labels(outcome="sent")._value.get() == 1


async def test_a_send_that_fails_twice_then_succeeds_is_sent_once(outbox: Outbox) -> None:
    resident = await outbox.resident()
    await outbox.enqueue(resident, "Closed.")
    outbox.twilio.fail_next(503, DOWN, times=2)
    dispatcher = outbox.dispatcher()
    for attempt in (1, 2):
        assert await dispatcher.run_once() == 1
        [row] = await outbox.rows()
        assert (row.state, row.attempts) == ("pending", attempt)
        assert row.next_attempt_at == outbox.clock.now + timedelta(seconds=30)
        assert row.last_error and "provider_down" in row.last_error
        assert await dispatcher.run_once() == 0  # backing off
        outbox.clock.now = row.next_attempt_at
    assert await dispatcher.run_once() == 1
    await drain(dispatcher)
    assert outbox.bodies() == ["Closed."]
    [row] = await outbox.rows()
    assert (row.state, row.attempts, row.last_error) == ("sent", 3, None)
    assert dispatcher.settled.labels(outcome="retry")._value.get() == 2


async def test_gives_up_after_max_attempts_with_an_alert(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    resident = await outbox.resident()
    await outbox.enqueue(resident, "Closed.")
    outbox.twilio.fail_next(503, DOWN, times=3)
    dispatcher = outbox.dispatcher(DispatchSettings(retry_delays=(0.0,), max_attempts=3))
    await drain(dispatcher)
    [row] = await outbox.rows()
    assert (row.state, row.attempts) == ("failed", 3)
    assert row.last_error and "provider_down" in row.last_error
    assert row.text == "Closed."  # kept for the person who looks into it
    assert dispatcher.alerts._value.get() == 1
    assert "gave up on notification" in caplog.text
    assert outbox.bodies() == []


async def test_an_unreachable_resident_fails_at_once(outbox: Outbox) -> None:
    resident = await outbox.resident()
    await outbox.enqueue(resident, "Closed.")
    outbox.twilio.fail_with_fixture("rest_error_21610.json")  # texted STOP to the carrier
    dispatcher = outbox.dispatcher()
    await drain(dispatcher)
    [row] = await outbox.rows()
    assert (row.state, row.attempts) == ("failed", 1)
    assert dispatcher.alerts._value.get() == 1


@pytest.mark.parametrize("gone", ["opted_out_at", "erased_at"])
async def test_an_opted_out_or_erased_resident_gets_nothing(outbox: Outbox, gone: str) -> None:
    resident = await outbox.resident()
    await outbox.enqueue(resident, "Closed.", purpose="report_filed")
    async with outbox.sessions() as db, db.begin():
        person = await db.get(Resident, resident)
        assert person is not None
        setattr(person, gone, NOON)  # after the message was stored, before it was sent
    dispatcher = outbox.dispatcher()
    await drain(dispatcher)
    assert outbox.twilio.messages() == []
    [row] = await outbox.rows()
    assert row.state == "skipped" and row.text == ""
    assert row.last_error and ("opted out" in row.last_error or "erased" in row.last_error)
    assert dispatcher.settled.labels(outcome="skipped")._value.get() == 1


async def test_quiet_hours_hold_status_updates_but_not_the_filed_message(outbox: Outbox) -> None:
    resident = await outbox.resident()
    outbox.clock.now = NIGHT
    await outbox.enqueue(resident, "Your report is with the city.", purpose="report_filed")
    await outbox.enqueue(resident, "Closed.", purpose="status_update")
    dispatcher = outbox.dispatcher(DispatchSettings(quiet_hours=QuietHours()))
    await drain(dispatcher)
    assert outbox.bodies() == ["Your report is with the city."]
    outbox.clock.now = NOON + timedelta(days=1)
    await drain(dispatcher)
    assert outbox.bodies() == ["Your report is with the city.", "Closed."]


async def test_a_later_update_replaces_one_still_waiting(outbox: Outbox) -> None:
    resident = await outbox.resident()
    submission = await outbox.submission(resident)
    await outbox.enqueue(resident, "Open.", submission_id=submission, collapse=True)
    await outbox.enqueue(resident, "Closed.", submission_id=submission, collapse=True)
    await drain(outbox.dispatcher())
    assert outbox.bodies() == ["Closed."]
    assert [(r.state, r.last_error) for r in await outbox.rows()] == [
        ("skipped", SUPERSEDED),
        ("sent", None),
    ]


async def test_an_update_that_failed_while_a_later_one_came_is_not_retried(
    outbox: Outbox,
) -> None:
    resident = await outbox.resident()
    submission = await outbox.submission(resident)
    await outbox.enqueue(resident, "Open.", submission_id=submission, collapse=True)
    outbox.twilio.fail_next(503, DOWN)
    delivery = ResidentDelivery(outbox.sessions, outbox.channels, attempts=1)

    async def newer_arrives_meanwhile(message: ResidentMessage) -> None:
        if message.text == "Open.":  # held by this dispatcher: collapse must leave it alone
            await outbox.enqueue(resident, "Closed.", submission_id=submission, collapse=True)
        await delivery(message)

    dispatcher = outbox.dispatcher(
        DispatchSettings(retry_delays=(0.0,)), send=newer_arrives_meanwhile
    )
    await drain(dispatcher)
    assert outbox.bodies() == ["Closed."]
    assert [(r.state, r.last_error) for r in await outbox.rows()] == [
        ("skipped", SUPERSEDED),
        ("sent", None),
    ]


async def test_a_dispatcher_that_dies_mid_send_leaves_the_row_to_another(outbox: Outbox) -> None:
    resident = await outbox.resident()
    await outbox.enqueue(resident, "Closed.")
    reached = asyncio.Event()

    async def frozen(message: ResidentMessage) -> None:
        reached.set()
        await asyncio.Event().wait()  # the process hangs here, then is killed

    dying = asyncio.create_task(outbox.dispatcher(send=frozen).run_once())
    await asyncio.wait_for(reached.wait(), 5)
    dying.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await dying
    survivor = outbox.dispatcher()
    assert await survivor.run_once() == 0  # the dead one's lease still holds the row
    outbox.clock.now += timedelta(seconds=FAST.lease_seconds)
    assert await survivor.run_once() == 1
    assert outbox.bodies() == ["Closed."]
    [row] = await outbox.rows()
    assert (row.state, row.attempts) == ("sent", 2)


async def _two_dispatchers(outbox: Outbox) -> None:
    phones = [f"+2783100{i:04d}" for i in range(30)]
    for phone in phones:
        await outbox.enqueue(await outbox.resident(phone), f"Closed for {phone}.")
    settings = DispatchSettings(batch_size=4, concurrency=3)
    await drain(outbox.dispatcher(settings), outbox.dispatcher(settings))
    sent = sorted((m.form["To"], m.form["Body"]) for m in outbox.twilio.messages())
    assert sent == [(phone, f"Closed for {phone}.") for phone in phones]
    assert {(r.state, r.attempts) for r in await outbox.rows()} == {("sent", 1)}


async def test_two_dispatchers_at_once_sqlite(outbox: Outbox) -> None:
    await _two_dispatchers(outbox)


@pytest.mark.postgres
async def test_two_dispatchers_at_once_postgres() -> None:
    async with postgres_database() as url, _outbox(url) as outbox:
        await _two_dispatchers(outbox)


async def test_a_dispatcher_whose_lease_ran_out_cannot_undo_the_next_ones_work(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    resident = await outbox.resident()
    await outbox.enqueue(resident, "Closed.")
    reached, release = asyncio.Event(), asyncio.Event()

    async def slow_then_failed(message: ResidentMessage) -> None:
        reached.set()
        await release.wait()
        raise NotDelivered("the provider answered too late")

    late = asyncio.create_task(outbox.dispatcher(send=slow_then_failed).run_once())
    await asyncio.wait_for(reached.wait(), 5)
    outbox.clock.now += timedelta(seconds=FAST.lease_seconds)
    assert await outbox.dispatcher().run_once() == 1  # takes the row over and sends it
    release.set()
    assert await late == 1
    [row] = await outbox.rows()
    # Without the fence the late failure would put the row back to pending: sent again later.
    assert (row.state, row.attempts, row.last_error) == ("sent", 2, None)
    assert outbox.bodies() == ["Closed."]
    assert "taken over" in caplog.text
