"""Official broadcasts end to end: written, previewed, approved and cancelled through the admin
API, fanned out and sent through the real channels to fake Twilio and Telegram servers, each
resident at most once, in their language, on the channel they use; opted-out residents never."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, update

from notifier.broadcasts import footer
from staff.accounts import NewAccount, create_account, issue_token
from storage.models import (
    AuditLog,
    Broadcast,
    BroadcastDelivery,
    Resident,
    ResidentAddress,
    Subscription,
)
from storage.types import utc_now
from tests.e2e.city import City, running_city
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.storage.databases import postgres_database

EN = "Water is off in ward 9 until 18:00."
AF = "Water is af in wyk 9 tot 18:00."


@dataclass
class Official:
    http: aiohttp.ClientSession
    url: str
    token: str
    account_id: int

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.request(
            method, self.url + path, json=body, headers=headers
        ) as response:
            if response.content_type == "text/csv":
                return response.status, await response.text()
            return response.status, await response.json()


async def official(
    city: City, email: str, roles: list[str], wards: list[str] | None = None
) -> Official:
    async with city.services.session_factory() as session, session.begin():
        created = await create_account(
            session, NewAccount.checked(email, roles=roles, wards=wards), actor="test"
        )
        issued = await issue_token(session, email, roles=roles, days=1, actor="test")
    return Official(city.http, city.url, issued.token, created.account.id)


async def resident(
    city: City,
    channel: str,
    address: str,
    *,
    ward: str = "9",
    locale: str = "en",
    opted_out: bool = False,
) -> int:
    async with city.services.session_factory() as session, session.begin():
        row = Resident(locale=locale, opted_out_at=utc_now() if opted_out else None)
        session.add(row)
        await session.flush()
        session.add(
            ResidentAddress(
                resident_id=row.id, channel=channel, address=address, last_inbound_at=utc_now()
            )
        )
        session.add(Subscription(resident_id=row.id, ward=ward))
        return row.id


@pytest.fixture(params=["sqlite"])
async def city(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[City]:
    async with contextlib.AsyncExitStack() as stack:
        env = {}
        if request.param == "postgres":
            env["CITYBOT_DATABASE_URL"] = await stack.enter_async_context(postgres_database())
        if request.param == "redis-cluster":
            # Deliveries handed out on the dispatch streams of every shard, on the cluster.
            env["CITYBOT_REDIS_URL"] = request.getfixturevalue("redis_cluster_url")
        twilio = await stack.enter_async_context(FakeTwilio())
        telegram = await stack.enter_async_context(FakeTelegram())
        yield await stack.enter_async_context(
            running_city(tmp_path, twilio=twilio, telegram=telegram, workers=False, env=env)
        )


BOTH = pytest.mark.parametrize("city", ["sqlite", "postgres"], indirect=True)
ALL = pytest.mark.parametrize("city", ["sqlite", "postgres", "redis-cluster"], indirect=True)


def _sms_to(city: City) -> dict[str, str]:
    assert city.twilio is not None
    return {r.form["To"]: r.form["Body"] for r in city.twilio.messages()}


async def _draft(author: Official, **body: Any) -> dict[str, Any]:
    status, created = await author.call(
        "POST", "/api/v1/broadcasts", {"title": "Water off", "text_en": EN, **body}
    )
    assert status == 201, created
    return created


@ALL
async def test_a_broadcast_reaches_each_follower_once_in_their_language(city: City) -> None:
    await resident(city, "sms", "+27820000001", locale="af")
    await resident(city, "sms", "+27820000002", locale="zu")
    await resident(city, "telegram", "5550001")
    await resident(city, "sms", "+27820000004", opted_out=True)
    await resident(city, "sms", "+27820000005", ward="10")
    author = await official(city, "ward9@city.gov", ["broadcaster"], wards=["9"])
    created = await _draft(author, text_af=AF, wards=["9"], topic="water")

    status, preview = await author.call("GET", f"/api/v1/broadcasts/{created['id']}/preview")
    assert status == 200
    assert preview["recipients"] == 3
    assert preview["by_channel"] == {"sms": 2, "telegram": 1}
    assert preview["missing_translations"] == {"zu": 1}
    assert preview["unreachable"] == 1 and not preview["needs_approval"]
    assert preview["sms_segments"] == {"af": 1, "en": 1}
    assert preview["sms_cost"] == pytest.approx(0.6)
    assert any("no zu text" in w for w in preview["warnings"])

    status, sent = await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    assert (status, sent["state"]) == (200, "scheduled")
    await city.services.broadcasts.run_until_idle()
    streams = city.services.broadcasts.streams
    if streams is not None:
        # With Redis (the cluster) the rows were handed out on the shards' dispatch streams.
        read = 0
        for name in streams.layout.dispatch_streams("sms"):
            read += sum(g["entries-read"] or 0 for g in await streams.redis.xinfo_groups(name))
        assert read >= 1 and await streams.backlog("sms") == 0
    # Each with why they got it and how to stop it, in their language (English text for the
    # resident whose language has none).
    assert _sms_to(city) == {
        "+27820000001": f"{AF} {footer('af', '9')}",
        "+27820000002": f"{EN} {footer('zu', '9')}",
    }
    assert city.telegram is not None
    assert [c.form["text"] for c in city.telegram.calls("sendMessage")] == [
        f"{EN} {footer('en', '9')}"
    ]

    await city.services.broadcasts.run_until_idle()  # nothing is sent twice
    assert len(_sms_to(city)) == 2 and len(city.telegram.calls("sendMessage")) == 1
    status, report = await author.call("GET", f"/api/v1/broadcasts/{created['id']}/report")
    assert report["state"] == "sent" and report["totals"] == {"sent": 3}
    assert report["by_channel"] == {"sms": {"sent": 2}, "telegram": {"sent": 1}}
    assert report["by_language"] == {"af": {"sent": 1}, "en": {"sent": 1}, "zu": {"sent": 1}}
    status, text = await author.call("GET", f"/api/v1/broadcasts/{created['id']}/report?format=csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {
        "broadcast": str(created["id"]),
        "dimension": "ward",
        "value": "9",
        "state": "sent",
        "count": "3",
    } in rows
    async with city.services.session_factory() as session:
        actions = (
            await session.scalars(
                select(AuditLog.action).where(AuditLog.subject == f"broadcast:{created['id']}")
            )
        ).all()
    assert list(actions) == ["broadcast.create", "broadcast.send", "broadcast.export"]


async def test_an_emergency_waits_for_a_second_person(city: City) -> None:
    await resident(city, "sms", "+27820000001")
    author = await official(city, "approver1@city.gov", ["approver"])
    other = await official(city, "approver2@city.gov", ["approver"])
    created = await _draft(author, wards=["9"], urgency="emergency")
    status, sent = await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    assert sent["state"] == "awaiting_approval"
    # The approver sees whose it is (the console says so beside the Approve button).
    status, listed = await other.call("GET", "/api/v1/broadcasts")
    assert [(b["author_email"], b["approver_email"]) for b in listed["items"]] == [
        ("approver1@city.gov", None)
    ]
    await city.services.broadcasts.run_until_idle()
    assert _sms_to(city) == {}
    status, refused = await author.call("POST", f"/api/v1/broadcasts/{created['id']}/approve")
    assert (status, refused["error"]["code"]) == (409, "conflict")
    status, approved = await other.call("POST", f"/api/v1/broadcasts/{created['id']}/approve")
    assert (status, approved["state"], approved["approved_by"]) == (
        200,
        "scheduled",
        other.account_id,
    )
    assert approved["approver_email"] == "approver2@city.gov"
    await city.services.broadcasts.run_until_idle()
    assert _sms_to(city) == {"+27820000001": f"{EN} {footer('en', '9')}"}


async def test_everyone_needs_approval_and_a_city_wide_account(city: City) -> None:
    await resident(city, "sms", "+27820000001", ward="1")
    await resident(city, "sms", "+27820000002", ward="99")
    scoped = await official(city, "ward9@city.gov", ["broadcaster"], wards=["9"])
    status, refused = await scoped.call(
        "POST", "/api/v1/broadcasts", {"title": "t", "text_en": EN, "everyone": True}
    )
    assert (status, refused["error"]["code"]) == (403, "forbidden")
    status, outside = await scoped.call(
        "POST", "/api/v1/broadcasts", {"title": "t", "text_en": EN, "wards": ["10"]}
    )
    assert (status, outside["error"]["message"]) == (403, "Ward 10 is outside your wards.")
    city_wide = await official(city, "city@city.gov", ["broadcaster"])
    created = await _draft(city_wide, everyone=True)
    status, preview = await city_wide.call("GET", f"/api/v1/broadcasts/{created['id']}/preview")
    assert preview["recipients"] == 2 and preview["needs_approval"]
    # The ward office does not see the city's broadcast at all.
    status, hidden = await scoped.call("GET", f"/api/v1/broadcasts/{created['id']}")
    assert (status, hidden["error"]["code"]) == (404, "not_found")
    status, listed = await scoped.call("GET", "/api/v1/broadcasts")
    assert listed["items"] == []


async def test_places_and_points_become_wards(city: City) -> None:
    author = await official(city, "city@city.gov", ["broadcaster"])
    created = await _draft(author, places=["Khayelitsha"])
    assert "Khayelitsha" in created["places"] and len(created["wards"]) >= 5
    pinned = await _draft(author, latitude=-34.0363, longitude=18.6776, radius_m=800)
    assert pinned["wards"] == ["94"] and pinned["point"]["radius_m"] == 800
    status, unknown = await author.call(
        "POST", "/api/v1/broadcasts", {"title": "t", "text_en": EN, "places": ["Qqzx Vrrk"]}
    )
    assert (status, unknown["error"]["code"]) == (400, "invalid_input")
    status, sea = await author.call(
        "POST",
        "/api/v1/broadcasts",
        {"title": "t", "text_en": EN, "latitude": -34.5, "longitude": 17.5},
    )
    assert status == 400 and "outside" in sea["error"]["message"]


@BOTH
async def test_cancel_stops_what_is_not_sent_yet(city: City) -> None:
    for n in range(30):
        await resident(city, "sms", f"+2782000{n:04d}")
    author = await official(city, "city@city.gov", ["broadcaster"])
    created = await _draft(author, wards=["9"])
    await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    sender = city.services.broadcasts
    # One batch at a time, so that the cancel lands between two batches of this small audience
    # (each batch's fence checks the broadcast is still sending; four lanes would send all 30).
    sender.settings = dataclasses.replace(sender.settings, batches_in_flight=1)
    await sender.run_once()  # fans out and sends one batch
    first = len(_sms_to(city))
    assert 0 < first < 30
    status, cancelled = await author.call("POST", f"/api/v1/broadcasts/{created['id']}/cancel")
    assert cancelled["state"] == "cancelled"
    await sender.run_until_idle()
    assert len(_sms_to(city)) == first
    status, report = await author.call("GET", f"/api/v1/broadcasts/{created['id']}/report")
    assert (status, report["totals"]) == (200, {"sent": first, "skipped": 30 - first})


@BOTH
async def test_failed_messages_are_resent_and_only_those(city: City) -> None:
    for n in range(3):
        await resident(city, "sms", f"+2782000{n:04d}")
    author = await official(city, "city@city.gov", ["broadcaster"])
    created = await _draft(author, wards=["9"])
    await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    assert city.twilio is not None
    # The provider refuses one message for good (a 4xx is not retried by the channel).
    city.twilio.fail_next(400, {"code": 21211, "message": "Invalid 'To'", "status": 400})
    await city.services.broadcasts.run_until_idle()
    status, report = await author.call("GET", f"/api/v1/broadcasts/{created['id']}/report")
    assert report["totals"] == {"failed": 1, "sent": 2}
    delivered_before = set(_sms_to(city))
    status, resent = await author.call("POST", f"/api/v1/broadcasts/{created['id']}/resend-failed")
    assert (status, resent["queued"]) == (200, 1)
    await city.services.broadcasts.run_until_idle()
    accepted = [r.form["To"] for r in city.twilio.messages()]
    assert len(accepted) == 3 and len(set(accepted)) == 3
    assert set(accepted) - delivered_before != set()


async def test_a_send_with_no_answer_in_time_is_unknown_and_never_resent(
    tmp_path: Path,
) -> None:
    """Found by tests/reliability/test_crashes.py: a send that timed out was "failed", yet the
    provider had often taken it, so resend-failed sent it twice."""
    env = {"CITYBOT_BROADCAST_LEASE_SECONDS": "1"}  # sends time out after 0.5 s
    async with (
        FakeTwilio() as twilio,
        running_city(tmp_path, twilio=twilio, workers=False, env=env) as city,
    ):
        await resident(city, "sms", "+27820000001")
        author = await official(city, "city@city.gov", ["broadcaster"])
        created = await _draft(author, wards=["9"])
        await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
        twilio.answer_delay = 2.0  # Twilio is slow to answer
        await city.services.broadcasts.run_until_idle()
        status, report = await author.call("GET", f"/api/v1/broadcasts/{created['id']}/report")
        assert report["totals"] == {"unknown": 1}
        status, resent = await author.call(
            "POST", f"/api/v1/broadcasts/{created['id']}/resend-failed"
        )
        assert (status, resent["queued"]) == (200, 0)


async def test_a_resident_who_opts_out_mid_broadcast_is_not_sent_to(city: City) -> None:
    ids = [await resident(city, "sms", f"+2782000{n:04d}") for n in range(3)]
    author = await official(city, "city@city.gov", ["broadcaster"])
    created = await _draft(author, wards=["9"])
    await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    async with city.services.session_factory() as session, session.begin():
        broadcast = await session.get(Broadcast, created["id"])
        assert broadcast is not None
    sender = city.services.broadcasts
    await sender.start_due()  # fanned out, nothing sent yet
    async with city.services.session_factory() as session, session.begin():
        await session.execute(
            update(Resident).where(Resident.id == ids[1]).values(opted_out_at=utc_now())
        )
    await sender.run_until_idle()
    assert "+27820000001" not in _sms_to(city) and len(_sms_to(city)) == 2
    async with city.services.session_factory() as session:
        rows = await session.execute(select(BroadcastDelivery.resident_id, BroadcastDelivery.state))
        states = {resident_id: state for resident_id, state in rows}
    assert states == {ids[0]: "sent", ids[1]: "skipped", ids[2]: "sent"}


@BOTH
async def test_a_sender_that_died_never_sends_twice(city: City) -> None:
    ids = [await resident(city, "sms", f"+2782000{n:04d}") for n in range(4)]
    author = await official(city, "city@city.gov", ["broadcaster"])
    created = await _draft(author, wards=["9"])
    await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    sender = city.services.broadcasts
    await sender.start_due()
    past = utc_now() - timedelta(seconds=1)
    async with city.services.session_factory() as session, session.begin():
        # What a killed sender leaves: one row claimed (never sent), one mid-send.
        await session.execute(
            update(BroadcastDelivery)
            .where(BroadcastDelivery.resident_id == ids[0])
            .values(state="claimed", claimed_until=past)
        )
        await session.execute(
            update(BroadcastDelivery)
            .where(BroadcastDelivery.resident_id == ids[1])
            .values(state="sending", claimed_until=past)
        )
    await sender.run_until_idle()
    assert sorted(_sms_to(city)) == ["+27820000000", "+27820000002", "+27820000003"]
    async with city.services.session_factory() as session:
        unknown = await session.scalar(
            select(func.count()).where(BroadcastDelivery.state == "unknown")
        )
        state = await session.scalar(select(Broadcast.state))
    assert unknown == 1 and state == "sent"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"title": "t"}, "missing_field"),
        ({"title": "t", "text_en": "  ", "wards": ["9"]}, "invalid_input"),
        ({"title": "t", "text_en": EN}, "invalid_input"),
        ({"title": "t", "text_en": EN, "wards": ["9"], "topic": "gossip"}, "invalid_field"),
        ({"title": "t", "text_en": EN, "wards": ["9"], "channels": ["fax"]}, "invalid_field"),
        ({"title": "t", "text_en": "x" * 1001, "wards": ["9"]}, "invalid_field"),
        ({"title": "t", "text_en": EN, "latitude": -34.0}, "invalid_input"),
        ({"title": "t", "text_en": EN, "wards": ["9"], "everyone": True}, "invalid_input"),
    ],
)
async def test_bad_broadcasts_are_refused_and_nothing_is_stored(
    city: City, body: dict[str, Any], code: str
) -> None:
    author = await official(city, "city@city.gov", ["broadcaster"])
    status, refused = await author.call("POST", "/api/v1/broadcasts", body)
    assert (status, refused["error"]["code"]) == (400, code), refused
    async with city.services.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0


async def test_a_sent_broadcast_cannot_be_sent_again(city: City) -> None:
    author = await official(city, "city@city.gov", ["broadcaster"])
    created = await _draft(author, wards=["9"])
    await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    status, again = await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    assert (status, again["error"]["code"]) == (409, "conflict")
    status, missing = await author.call("POST", "/api/v1/broadcasts/999/send")
    assert (status, missing["error"]["code"]) == (404, "not_found")


async def test_the_report_follows_the_providers_receipts(city: City) -> None:
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    from tests.channels.signed import twilio_form
    from tests.fakes.twilio_api import AUTH_TOKEN

    await resident(city, "sms", "+27820000001")
    await resident(city, "sms", "+27820000002")
    author = await official(city, "city@city.gov", ["broadcaster"])
    created = await _draft(author, wards=["9"])
    await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    await city.services.broadcasts.run_until_idle()
    async with city.services.session_factory() as session:
        rows = await session.execute(
            select(ResidentAddress.address, BroadcastDelivery.provider_message_id).join(
                BroadcastDelivery, BroadcastDelivery.resident_id == ResidentAddress.resident_id
            )
        )
        sids = {address: str(sid) for address, sid in rows}
    for to, fixture in (
        ("+27820000001", "status_delivered.json"),
        ("+27820000002", "status_undelivered_30003.json"),
    ):
        form = twilio_form(fixture, MessageSid=sids[to], SmsSid=sids[to], To=to)
        url = city.url + "/webhooks/twilio/status"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, form),
        }
        async with city.http.post(url, data=urlencode(form), headers=headers) as response:
            assert response.status == 204, await response.text()
    status, report = await author.call("GET", f"/api/v1/broadcasts/{created['id']}/report")
    assert (status, report["totals"]) == (200, {"delivered": 1, "failed": 1})


async def test_a_residents_record_shows_the_broadcasts_meant_for_them(city: City) -> None:
    from storage.resident_data import resident_record

    mine = await resident(city, "sms", "+27820000001", locale="af")
    author = await official(city, "city@city.gov", ["broadcaster"])
    created = await _draft(author, wards=["9"], text_af=AF)
    await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    assert city.twilio is not None
    city.twilio.fail_next(400, {"code": 21211, "message": "Invalid 'To'", "status": 400})
    await city.services.broadcasts.run_until_idle()
    async with city.services.session_factory() as session:
        record = await resident_record(session, mine)
    assert record is not None
    (shown,) = record["broadcasts"]
    assert (shown["broadcast"], shown["text"], shown["state"]) == (created["id"], AF, "failed")


async def test_a_broadcast_reaches_alerts_for_its_topic_or_for_everything(city: City) -> None:
    roads_only = await resident(city, "sms", "+27820000001")
    await resident(city, "sms", "+27820000002")
    async with city.services.session_factory() as session, session.begin():
        await session.execute(
            update(Subscription)
            .where(Subscription.resident_id == roads_only)
            .values(topics=",roads,")
        )
    author = await official(city, "city@city.gov", ["broadcaster"])
    water = await _draft(author, wards=["9"], topic="water")
    status, preview = await author.call("GET", f"/api/v1/broadcasts/{water['id']}/preview")
    assert (status, preview["recipients"]) == (200, 1)
    general = await _draft(author, wards=["9"], topic="general")
    status, preview = await author.call("GET", f"/api/v1/broadcasts/{general['id']}/preview")
    assert preview["recipients"] == 2
