"""The daily digest of reports: written at the digest time for each alert with the ``reports``
topic, in the resident's language and within the channel's budget, sent through the real
channels to fake Twilio and Telegram servers once per alert and day (two senders, a crash
between claim and send, a crash mid-call), nothing on an empty day, nobody opted out, nothing
in quiet hours; and the same digest for a ward through the admin API."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from conversations.retention import Retention
from forms_runtime.gazetteer.geometry import METRES_PER_DEGREE
from forms_runtime.i18n import tr
from forms_runtime.loader import standard_forms
from forms_runtime.sms import segments, to_gsm7
from notifier.broadcasts import digest_footer
from notifier.delivery import ResidentDelivery
from notifier.digest_sending import DigestSender, DigestSettings
from notifier.digests import Digest, DigestSchedule, Event, EventIndex, render
from notifier.ports import ResidentMessage
from notifier.quiet_hours import QuietHours
from staff.accounts import NewAccount, create_account, issue_token
from storage.models import (
    AuditLog,
    ReportDigest,
    RequestStatusChange,
    Resident,
    ResidentAddress,
    Submission,
    Subscription,
)
from storage.resident_data import erase_personal_data, resident_record
from tests.e2e.city import City, running_city
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.storage.databases import postgres_database

DAY = date(2026, 12, 3)
# 18:05 in Cape Town on DAY: just after the digest time.
AFTER = datetime(2026, 12, 3, 16, 5, tzinfo=UTC)
DURING = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
BEFORE = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TITLES = {f.id: f.title for f in standard_forms().values()}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# -- content (no database) ---------------------------------------------------------------------


def _events(new: int, closed: int = 0) -> list[Event]:
    made = [
        Event(f"CT-N{n:05d}", "pothole" if n % 3 else "no_water", None, "9", None, None)
        for n in range(new)
    ]
    changed = [
        Event(f"CT-C{n:05d}", "streetlight", "closed", "9", None, None) for n in range(closed)
    ]
    return made + changed


def test_the_schedule_covers_the_day_up_to_the_digest_time() -> None:
    schedule = DigestSchedule(at=time(18, 0), zone="Africa/Johannesburg")
    assert schedule.due_day(AFTER) == DAY
    assert schedule.due_day(AFTER - timedelta(minutes=10)) == DAY - timedelta(days=1)
    assert schedule.window(DAY) == (
        datetime(2026, 12, 2, 16, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 16, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize("locale", ["en", "af", "zu", "xh"])
def test_the_digest_in_each_language(locale: str) -> None:
    digest = Digest.of(_events(3, 1), day=DAY, place="ward 9", wards=("9",))
    text = render(digest, locale, "sms", TITLES)
    assert text.startswith(tr(locale, "Reports in {place}, {date}:", place="ward 9", date="")[:8])
    assert text.endswith(digest_footer(locale, "ward 9"))
    # Counts per service and status, in the language; every reference fits here.
    pothole, no_water = tr(locale, TITLES["pothole"]), tr(locale, TITLES["no_water"])
    assert f"2 {pothole}" in text and f"1 {no_water}" in text
    assert f"1 {tr(locale, 'closed')}" in text
    assert all(ref in text for ref in ("CT-N00000", "CT-N00001", "CT-N00002", "CT-C00000"))
    if locale != "en":
        assert tr(locale, "Reports in {place}, {date}:") != "Reports in {place}, {date}:"


def test_sms_keeps_to_three_segments_and_says_how_many_more() -> None:
    digest = Digest.of(_events(60, 25), day=DAY, place="Khayelitsha", wards=("9",))
    text = render(digest, "en", "sms", TITLES)
    assert segments(to_gsm7(text)) <= 3
    assert "New reports: 60 (40 Pothole or road damage, 20 No water supply)." in text
    assert "Status changes: 25 (25 closed)." in text
    shown = text.count("CT-")
    assert 10 < shown < 85 and f"and {85 - shown} more" in text
    # New reports come first; Telegram has room for more of them.
    assert "CT-N00000" in text
    assert render(digest, "en", "telegram", TITLES).count("CT-") > shown


def test_a_pin_takes_the_reports_within_its_radius() -> None:
    lat, lon = -33.9, 18.5
    step = 1 / METRES_PER_DEGREE  # a metre north
    near = Event("CT-NEAR01", "pothole", None, "57", lat + 495 * step, lon)
    far = Event("CT-FAR001", "pothole", None, "57", lat + 505 * step, lon)
    typed = Event("CT-TYPED1", "pothole", None, "57", None, None)
    digest = Digest.of([near, far, typed], day=DAY, place="pin -33.9,18.5", pin=(lat, lon, 500))
    assert [e.reference for e in digest.new] == ["CT-NEAR01"]
    assert "your pin" in render(digest, "en", "sms", TITLES)
    assert Digest.of([far], day=DAY, place="x", pin=(lat, lon, 500)).empty


# -- sending, on SQLite and PostgreSQL ---------------------------------------------------------


@pytest.fixture(params=["sqlite"])
async def city(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[City]:
    async with contextlib.AsyncExitStack() as stack:
        env = {}
        if request.param == "postgres":
            env["CITYBOT_DATABASE_URL"] = await stack.enter_async_context(postgres_database())
        twilio = await stack.enter_async_context(FakeTwilio())
        telegram = await stack.enter_async_context(FakeTelegram())
        yield await stack.enter_async_context(
            running_city(tmp_path, twilio=twilio, telegram=telegram, workers=False, env=env)
        )


BOTH = pytest.mark.parametrize("city", ["sqlite", "postgres"], indirect=True)


async def resident(
    city: City,
    channel: str,
    address: str,
    *,
    wards: Sequence[str] = ("9",),
    label: str = "ward 9",
    topics: str = ",reports,",
    locale: str = "en",
    opted_out: bool = False,
    pin: tuple[float, float] | None = None,
) -> int:
    async with city.services.session_factory() as session, session.begin():
        row = Resident(locale=locale, opted_out_at=BEFORE if opted_out else None)
        session.add(row)
        await session.flush()
        session.add(
            ResidentAddress(
                resident_id=row.id,
                channel=channel,
                address=address,
                last_inbound_at=datetime.now(UTC),
            )
        )
        for ward in wards:
            session.add(
                Subscription(
                    resident_id=row.id,
                    ward=ward,
                    label=label,
                    topics=topics,
                    latitude=pin[0] if pin else None,
                    longitude=pin[1] if pin else None,
                    radius_m=500 if pin else None,
                    created_at=BEFORE,
                )
            )
        return row.id


async def report(
    city: City,
    reference: str,
    *,
    ward: str = "9",
    form: str = "pothole",
    at: datetime = DURING,
    point: tuple[float, float] | None = None,
    closed_at: datetime | None = None,
) -> None:
    async with city.services.session_factory() as session, session.begin():
        row = Submission(
            reference=reference,
            form_id=form,
            form_version=1,
            service_code=form,
            locale="en",
            answers={"description": "my neighbour at 12 Main Road, 082 555 0101"},
            address_string="12 Main Road",
            ward=ward,
            lat=point[0] if point else None,
            lon=point[1] if point else None,
            created_at=at,
            status="filed",
        )
        session.add(row)
        await session.flush()
        if closed_at is not None:
            session.add(
                RequestStatusChange(
                    submission_id=row.id,
                    service_request_id="1042",
                    status="closed",
                    observed_at=closed_at,
                    notify_state="queued",
                )
            )


def sender(
    city: City,
    clock: Clock,
    *,
    send: Callable[[ResidentMessage], Awaitable[Any]] | None = None,
    quiet: QuietHours | None = None,
    at: time = time(18, 0),
) -> DigestSender:
    deliver = ResidentDelivery(city.services.session_factory, city.services.channels)
    return DigestSender(
        city.services.session_factory,
        send or deliver,
        TITLES,
        DigestSettings(
            schedule=DigestSchedule(at=at), quiet_hours=quiet, lease_seconds=60, fanout_range=2
        ),
        clock=clock,
    )


def _sms(city: City) -> list[tuple[str, str]]:
    assert city.twilio is not None
    return [(r.form["To"], r.form["Body"]) for r in city.twilio.messages()]


def _telegram(city: City) -> list[str]:
    assert city.telegram is not None
    return [c.form["text"] for c in city.telegram.calls("sendMessage")]


async def _states(city: City) -> dict[str, int]:
    async with city.services.session_factory() as session:
        rows = await session.execute(
            select(ReportDigest.state, func.count()).group_by(ReportDigest.state)
        )
        return dict(rows.all())  # type: ignore[arg-type]


@BOTH
async def test_each_follower_gets_the_days_digest_once_in_their_language(city: City) -> None:
    await resident(city, "sms", "+27820000001", locale="af")
    await resident(city, "sms", "+27820000002", locale="zu")
    await resident(city, "sms", "+27820000003", locale="xh")
    await resident(city, "telegram", "5550001")
    await resident(city, "sms", "+27820000004", opted_out=True)
    await resident(city, "sms", "+27820000005", wards=("10",), label="ward 10")  # a quiet ward
    await resident(city, "sms", "+27820000006", topics=",all,")  # news, not the digest
    await report(city, "CT-AAAAA1")
    await report(city, "CT-AAAAA2", form="no_water", closed_at=DURING + timedelta(hours=2))
    await report(city, "CT-OLD001", at=DURING - timedelta(days=2))  # before the window
    await report(city, "CT-LATER1", at=AFTER)  # tomorrow's digest

    clock = Clock(AFTER)
    first, second = sender(city, clock), sender(city, clock)
    await first.run_until_idle()
    await second.run_until_idle()
    await first.run_until_idle()

    digest = Digest.of(
        [
            Event("CT-AAAAA1", "pothole", None, "9", None, None),
            Event("CT-AAAAA2", "no_water", None, "9", None, None),
            Event("CT-AAAAA2", "no_water", "closed", "9", None, None),
        ],
        day=DAY,
        place="ward 9",
        wards=("9",),
    )
    assert sorted(_sms(city)) == [
        ("+27820000001", render(digest, "af", "sms", TITLES)),
        ("+27820000002", render(digest, "zu", "sms", TITLES)),
        ("+27820000003", render(digest, "xh", "sms", TITLES)),
    ]
    heads = [body.split(",")[0] for _, body in sorted(_sms(city))]
    assert heads == ["Meldings in ward 9", "Imibiko e-ward 9", "Iingxelo e-ward 9"]
    assert _telegram(city) == [render(digest, "en", "telegram", TITLES)]
    assert "CT-OLD001" not in _telegram(city)[0] and "CT-LATER1" not in _telegram(city)[0]
    assert "Status changes: 1 (1 closed)" in _telegram(city)[0]
    assert await _states(city) == {"sent": 4}

    # The next day's digest has the report made after the digest time, and only it.
    clock.now += timedelta(days=1)
    await first.run_until_idle()
    assert len(_sms(city)) == 6 and len(_telegram(city)) == 2
    assert "CT-LATER1" in _telegram(city)[1] and "CT-AAAAA1" not in _telegram(city)[1]
    # The day after, nothing happened: nothing is sent.
    clock.now += timedelta(days=1)
    await first.run_until_idle()
    await second.run_until_idle()
    assert len(_sms(city)) == 6 and len(_telegram(city)) == 2
    assert await _states(city) == {"sent": 8}


@BOTH
async def test_a_crash_between_claim_and_send_sends_it_once_the_lease_ends(city: City) -> None:
    for n in range(3):
        await resident(city, "sms", f"+2782000001{n}")
    await report(city, "CT-AAAAA1")
    clock = Clock(AFTER)
    crashed = sender(city, clock)
    assert await crashed.fan_out(DAY) > 0
    while await crashed.fan_out(DAY):
        pass
    claimed = await crashed.claim(DAY)
    assert len(claimed) == 3
    # The process dies here: claimed, never sent. Another sender leaves them while the lease
    # holds, then sends each once.
    other = sender(city, clock)
    await other.run_until_idle()
    assert _sms(city) == [] and await _states(city) == {"claimed": 3}
    clock.now += timedelta(seconds=61)
    await other.run_until_idle()
    await other.run_until_idle()
    assert sorted(to for to, _ in _sms(city)) == [f"+2782000001{n}" for n in range(3)]
    assert await _states(city) == {"sent": 3}


class Killed(BaseException):
    """The process dies during the provider call (not an error a sender could handle)."""


async def test_a_crash_mid_call_is_never_sent_again(city: City) -> None:
    await resident(city, "sms", "+27820000001")
    await report(city, "CT-AAAAA1")
    clock = Clock(AFTER)

    async def dies(message: ResidentMessage) -> None:
        raise Killed

    with pytest.raises(Killed):
        await sender(city, clock, send=dies).run_until_idle()
    clock.now += timedelta(seconds=61)
    await sender(city, clock).run_until_idle()
    assert _sms(city) == [] and await _states(city) == {"unknown": 1}


async def test_opting_out_after_the_digest_was_written_stops_it(city: City) -> None:
    rid = await resident(city, "sms", "+27820000001")
    await report(city, "CT-AAAAA1")
    clock = Clock(AFTER)
    digests = sender(city, clock)
    while await digests.fan_out(DAY):
        pass
    async with city.services.session_factory() as session, session.begin():
        found = await session.get(Resident, rid)
        assert found is not None
        found.opted_out_at = AFTER
    await digests.run_until_idle()
    assert _sms(city) == [] and await _states(city) == {"skipped": 1}


@BOTH
async def test_quiet_hours_hold_the_digest_until_morning(city: City) -> None:
    await resident(city, "sms", "+27820000001")
    await report(city, "CT-AAAAA1", at=datetime(2026, 12, 3, 19, 0, tzinfo=UTC))
    quiet = QuietHours(start=time(21), end=time(7))
    # The digest at 22:00 local (20:00 UTC) falls in quiet hours: written, not sent.
    clock = Clock(datetime(2026, 12, 3, 20, 5, tzinfo=UTC))
    digests = sender(city, clock, quiet=quiet, at=time(22, 0))
    await digests.run_until_idle()
    assert _sms(city) == [] and await _states(city) == {"queued": 1}
    # 07:05 the next morning: sent, with the day it covers.
    clock.now = datetime(2026, 12, 4, 5, 5, tzinfo=UTC)
    await digests.run_until_idle()
    ((_, text),) = _sms(city)
    assert "Reports in ward 9, 3 Dec:" in text and "CT-AAAAA1" in text


async def test_a_digest_not_sent_by_the_next_one_is_dropped(city: City) -> None:
    await resident(city, "sms", "+27820000001")
    await report(city, "CT-AAAAA1")
    clock = Clock(AFTER)
    digests = sender(city, clock)
    while await digests.fan_out(DAY):
        pass
    clock.now += timedelta(days=1)
    await digests.run_until_idle()
    assert _sms(city) == [] and await _states(city) == {"skipped": 1}


async def test_a_pin_alert_gets_the_reports_around_it(city: City) -> None:
    lat, lon = -33.9249, 18.4241
    step = 1 / METRES_PER_DEGREE
    await resident(
        city,
        "sms",
        "+27820000001",
        wards=("57", "77"),
        label="pin -33.9249,18.4241",
        pin=(lat, lon),
    )
    await report(city, "CT-NEAR01", ward="77", point=(lat + 400 * step, lon))
    await report(city, "CT-FAR001", ward="77", point=(lat + 900 * step, lon))
    await sender(city, Clock(AFTER)).run_until_idle()
    ((_, text),) = _sms(city)
    assert "CT-NEAR01" in text and "CT-FAR001" not in text and "your pin" in text


# -- the admin API -----------------------------------------------------------------------------


async def test_a_councillors_office_reads_its_wards_digest(city: City) -> None:
    await report(city, "CT-AAAAA1")
    await report(city, "CT-AAAAA2", form="no_water", closed_at=DURING + timedelta(hours=1))
    await report(city, "CT-BBBBB1", ward="10")
    async with city.services.session_factory() as session, session.begin():
        await create_account(
            session,
            NewAccount.checked("ward9@city.gov", roles=["analyst"], wards=["9"]),
            actor="test",
        )
        issued = await issue_token(session, "ward9@city.gov", roles=["analyst"], days=1, actor="t")
        await create_account(
            session, NewAccount.checked("agent@city.gov", roles=["agent"]), actor="test"
        )
        agent = await issue_token(session, "agent@city.gov", roles=["agent"], days=1, actor="t")

    async def get(token: str, query: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with city.http.get(f"{city.url}/api/v1/digests?{query}", headers=headers) as r:
            return r.status, await r.json()

    status, digest = await get(issued.token, f"ward=9&date={DAY.isoformat()}")
    assert status == 200, digest
    assert digest["complete"] and digest["new_reports"] == 2
    assert digest["new_by_service"] == {"pothole": 1, "no_water": 1}
    assert digest["changes_by_status"] == {"closed": 1}
    assert [r["reference"] for r in digest["reports"]] == ["CT-AAAAA1", "CT-AAAAA2", "CT-AAAAA2"]
    assert "CT-AAAAA1" in digest["texts"]["en"] and set(digest["texts"]) == {"en", "af", "zu", "xh"}
    # Services, statuses and references only: nothing a resident wrote, nowhere.
    assert "Main Road" not in str(digest) and "082" not in str(digest)

    assert (await get(issued.token, "ward=10"))[0] == 403
    assert (await get(agent.token, "ward=9"))[0] == 403
    assert (await get(issued.token, "ward=9&date=yesterday"))[0] == 400
    status, empty = await get(issued.token, "ward=9&date=2026-11-01")
    assert status == 200 and empty["new_reports"] == 0 and empty["texts"]["en"] == ""
    async with city.services.session_factory() as session:
        views = (
            await session.scalars(select(AuditLog.subject).where(AuditLog.action == "digest.view"))
        ).all()
    assert list(views) == ["ward:9", "ward:9"]


async def test_digests_are_in_the_residents_record_and_go_with_erasure(city: City) -> None:
    rid = await resident(city, "sms", "+27820000001", label="pin -33.9249,18.4241")
    await report(city, "CT-AAAAA1")
    await sender(city, Clock(AFTER)).run_until_idle()
    async with city.services.session_factory() as session, session.begin():
        record = await resident_record(session, rid)
        assert record is not None
        (shown,) = record["digests"]
        assert (shown["alert"], shown["day"], shown["state"]) == (
            "pin -33.9249,18.4241",
            DAY.isoformat(),
            "sent",
        )
        assert "CT-AAAAA1" in shown["text"]
        await erase_personal_data(session, rid, personal_steps={}, now=AFTER)
    assert await _states(city) == {}


async def test_old_digests_are_forgotten_with_the_message_texts(city: City) -> None:
    async with city.services.session_factory() as session, session.begin():
        for day in (date(2020, 1, 1), datetime.now(UTC).date()):
            session.add(
                ReportDigest(
                    resident_id=1, label="ward 9", day=day, channel="sms", locale="en", text="t"
                )
            )
    retention = Retention(city.services.session_factory, {}, message_retention_days=90)
    assert (await retention.purge_expired())["report_digests"] == 1
    assert await _states(city) == {"queued": 1}


def test_the_event_index_finds_what_a_pass_over_every_event_finds() -> None:
    rng = random.Random(5)
    events = [
        Event(
            f"CT-R{n:05d}",
            "pothole",
            None if n % 4 else "closed",
            str(rng.randint(1, 20)),
            rng.uniform(-34.0, -33.9) if n % 7 else None,
            rng.uniform(18.4, 18.5) if n % 7 else None,
        )
        for n in range(2000)
    ]
    index = EventIndex(events)
    for _ in range(50):
        pin = (rng.uniform(-34.0, -33.9), rng.uniform(18.4, 18.5), rng.choice([200.0, 500.0]))
        wards = tuple(str(rng.randint(1, 20)) for _ in range(3))
        whole = Digest.of(events, day=DAY, place="p", pin=pin)
        assert Digest.of(index.of_area((), pin), day=DAY, place="p", pin=pin) == whole
        whole = Digest.of(events, day=DAY, place="p", wards=wards)
        assert Digest.of(index.of_area(wards, None), day=DAY, place="p", wards=wards) == whole


@pytest.mark.parametrize("city", ["postgres"], indirect=True)
async def test_two_senders_at_once_share_the_day_and_send_each_once(city: City) -> None:
    phones = [f"+278300000{n:02d}" for n in range(30)]
    for n, phone in enumerate(phones):
        await resident(city, "sms", phone, locale=("en", "af", "zu", "xh")[n % 4])
    await report(city, "CT-AAAAA1")
    clock = Clock(AFTER)
    senders = [sender(city, clock) for _ in range(2)]
    await asyncio.gather(*(s.run_until_idle() for s in senders))
    await asyncio.gather(*(s.run_until_idle() for s in senders))
    assert sorted(to for to, _ in _sms(city)) == phones
    assert await _states(city) == {"sent": 30}
