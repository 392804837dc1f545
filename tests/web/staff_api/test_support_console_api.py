"""The support console's API over real HTTP: the live feed (server-sent events) of the queue
and of one conversation, scoped to the caller's wards and replaying what a reconnecting page
missed; canned responses per language; a conversation's context; the SMS cost of a draft;
each agent's load. SQLite, and PostgreSQL where the test asks for it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from bot.web.staff_api import CLOCK_KEY
from conversations.keys import ConversationKey
from storage.models import (
    AuditLog,
    MessageLog,
    Resident,
    ResidentAddress,
    SupportMessage,
    SupportTicket,
)
from storage.types import utc_now
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN
from tests.web.staff_members import Clock, Member, StaffHouse, fast_authentication, seed_ticket

EVENTS = "/api/v1/support/events"


@dataclass
class Stream:
    """One page's EventSource: the events it was sent, in order."""

    response: aiohttp.ClientResponse
    events: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)

    async def next(self, timeout: float = 3.0) -> tuple[str, dict[str, Any], str | None]:
        name, data, event_id = "message", "", None
        async with asyncio.timeout(timeout):
            while True:
                raw = (await self.response.content.readline()).decode()
                if raw == "":
                    raise EOFError("the stream ended")
                line = raw.rstrip("\n")
                if line == "":
                    if data:
                        self.events.append((name, json.loads(data), event_id))
                        return self.events[-1]
                    continue
                if line.startswith(":") or line.startswith("retry:"):
                    continue
                key, _, value = line.partition(": ")
                if key == "event":
                    name = value
                elif key == "data":
                    data += value
                elif key == "id":
                    event_id = value

    async def until(self, name: str, timeout: float = 3.0) -> dict[str, Any]:
        while True:
            got, data, _ = await self.next(timeout)
            if got == name:
                return data

    def close(self) -> None:
        self.response.close()


async def _open(member: Member, query: str = "", **headers: str) -> Stream:
    response = await member.http.get(EVENTS + query, headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    stream = Stream(response)
    await stream.until("ready")
    return stream


async def _resident_says(house: StaffHouse, ticket_id: int, text: str) -> int:
    # What conversations.support writes when a resident writes during a takeover.
    async with house.sessions() as session, session.begin():
        line = SupportMessage(ticket_id=ticket_id, direction="resident", text=text)
        session.add(line)
        await session.flush()
        return line.id


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_the_queue_is_live_and_scoped_to_the_callers_wards(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    ward9 = await house.member("ward9@city.gov", ["agent"], wards=["9"])
    everyone, scoped = await _open(agent), await _open(ward9)
    try:
        await seed_ticket(house.sessions, ward="1")
        assert (await everyone.next())[0] == "queue"
        # Nothing of ward 1 reaches a ward 9 agent; a ward 9 conversation does.
        await seed_ticket(house.sessions, ward="9")
        assert (await scoped.next())[0] == "queue"
        assert (await everyone.next())[0] == "queue"
        assert [e[0] for e in scoped.events] == ["ready", "queue"]
        assert house.services.support_feed.watching == 2
    finally:
        everyone.close()
        scoped.close()
    for _ in range(50):  # the poller stops once no page watches
        if house.services.support_feed.watching == 0:
            break
        await asyncio.sleep(0.05)
    assert house.services.support_feed.watching == 0


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_conversation_streams_its_lines_and_replays_what_a_page_missed(
    house: StaffHouse,
) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    ticket = await seed_ticket(house.sessions)
    assert (await agent.call("POST", f"/api/v1/support/tickets/{ticket}/claim")).status == 200
    shown = await agent.call("GET", f"/api/v1/support/tickets/{ticket}")
    since = max(m["id"] for m in shown.body["messages"])
    first = await _resident_says(house, ticket, "the water is back, thank you")  # before the page
    stream = await _open(agent, f"?ticket={ticket}&since={since}")
    try:
        # The line written between the page's read and its stream comes first, then "ready".
        assert [e[0] for e in stream.events] == ["message", "ready"]
        name, data, event_id = stream.events[0]
        assert (name, data["line"]["text"], event_id) == (
            "message",
            "the water is back, thank you",
            str(first),
        )
        assert data["ticket"] == {
            "id": ticket,
            "state": "held",
            "agent_id": agent.account_id,
            "outcome": None,
        }
        await agent.call("POST", f"/api/v1/support/tickets/{ticket}/notes", {"text": "sorted"})
        data = await stream.until("message")
        assert (data["line"]["direction"], data["line"]["text"]) == ("note", "sorted")
        second = await _resident_says(house, ticket, "bye")
        data = await stream.until("message")
        assert (data["line"]["id"], data["line"]["text"]) == (second, "bye")
        await agent.call(
            "POST", f"/api/v1/support/tickets/{ticket}/handback", {"outcome": "resolved"}
        )
        data = await stream.until("message")
        assert data["ticket"]["state"] == "closed" and data["ticket"]["outcome"] == "resolved"
    finally:
        stream.close()
    # Another conversation's lines never reach this page; a reconnect gets what it missed.
    other = await seed_ticket(house.sessions)
    await _resident_says(house, other, "not for that page")
    again = await _open(agent, f"?ticket={ticket}", **{"Last-Event-ID": str(first)})
    try:
        replayed = [e[1]["line"]["text"] for e in again.events if e[0] == "message"]
        assert replayed[0] == "sorted" and "bye" in replayed
        assert "not for that page" not in replayed
    finally:
        again.close()
    async with house.sessions() as session:
        watched = (
            await session.scalars(
                select(AuditLog.subject).where(AuditLog.action == "support.watch")
            )
        ).all()
    # The page's look is audited once; the browser's reconnection (Last-Event-ID) is not another.
    assert list(watched) == [f"ticket:{ticket}"]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_the_queue_filters_by_language_channel_and_topic(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    made: dict[tuple[str, str, str | None], int] = {}
    for locale, channel, topic in [
        ("zu", "sms", "pothole"),
        ("zu", "whatsapp", None),
        ("en", "whatsapp", "pothole"),
        ("af", "telegram", "water_leak"),
    ]:
        ticket = await seed_ticket(house.sessions, locale=locale)
        async with house.sessions() as session, session.begin():
            row = await session.get(SupportTicket, ticket)
            assert row is not None
            row.channel, row.topic = channel, topic
        made[(locale, channel, topic)] = ticket

    async def ids(query: str) -> set[int]:
        answer = await agent.call("GET", "/api/v1/support/queue" + query)
        assert answer.status == 200, answer.body
        return {item["id"] for item in answer.body["items"]}

    assert await ids("?language=zu") == {made["zu", "sms", "pothole"], made["zu", "whatsapp", None]}
    assert await ids("?channel=whatsapp") == {
        made["zu", "whatsapp", None],
        made["en", "whatsapp", "pothole"],
    }
    assert await ids("?topic=pothole&channel=whatsapp") == {made["en", "whatsapp", "pothole"]}
    assert await ids("?language=af&topic=pothole") == set()
    assert len(await ids("")) == 4
    for bad in ("?language=fr", "?channel=" + "x" * 33, "?state=closed", "?limit=0"):
        answer = await agent.call("GET", "/api/v1/support/queue" + bad)
        assert answer.status == 400, (bad, answer.body)


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_residents_message_reaches_the_agents_page_within_a_second(
    house: StaffHouse,
) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    ticket = await seed_ticket(house.sessions)
    assert (await agent.call("POST", f"/api/v1/support/tickets/{ticket}/claim")).status == 200
    stream = await _open(agent, f"?ticket={ticket}")
    try:
        lags = []
        for n in range(6):
            await asyncio.sleep(0.17 * n)  # at different points of the feed's poll
            line = await _resident_says(house, ticket, f"message {n}")
            committed = time.monotonic()
            while True:
                data = await stream.until("message", timeout=1.0)
                if data["line"]["id"] == line:
                    break
            lags.append(time.monotonic() - committed)
            assert data["line"]["text"] == f"message {n}"
        assert max(lags) < 1.0, lags
    finally:
        stream.close()


async def test_a_conversation_of_another_ward_cannot_be_followed(house: StaffHouse) -> None:
    ticket = await seed_ticket(house.sessions, ward="1")
    ward9 = await house.member("ward9@city.gov", ["agent"], wards=["9"])
    analyst = await house.member("analyst@city.gov", ["analyst"])
    refused = await ward9.call("GET", f"{EVENTS}?ticket={ticket}")
    assert (refused.status, refused.code) == (404, "not_found")
    refused = await analyst.call("GET", EVENTS)
    assert (refused.status, refused.code) == (403, "forbidden")
    anonymous = await house.anonymous().call("GET", EVENTS)
    assert anonymous.status == 401


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_canned_responses_are_kept_per_language_and_audited(house: StaffHouse) -> None:
    supervisor = await house.member("super@city.gov", ["supervisor"])
    agent = await house.member("agent@city.gov", ["agent"])
    made = []
    for name, language, text in [
        ("greeting", "en", "Hello, how can I help?"),
        ("greeting", "zu", "Sawubona, ngingakusiza ngani?"),
        ("water_outage", "en", "The water is off in your area until 18:00."),
    ]:
        answer = await supervisor.call(
            "POST",
            "/api/v1/support/canned-responses",
            {"name": name, "language": language, "text": text},
        )
        assert answer.status == 201, answer
        made.append(answer.body)
    twice = await supervisor.call(
        "POST",
        "/api/v1/support/canned-responses",
        {"name": "greeting", "language": "zu", "text": "again"},
    )
    assert (twice.status, twice.code) == (409, "conflict")
    bad = await supervisor.call(
        "POST",
        "/api/v1/support/canned-responses",
        {"name": "Not a name!", "language": "en", "text": "x"},
    )
    assert (bad.status, bad.code) == (400, "invalid_input")
    refused = await agent.call(
        "POST",
        "/api/v1/support/canned-responses",
        {"name": "mine", "language": "en", "text": "x"},
    )
    assert (refused.status, refused.code) == (403, "forbidden")

    # A Zulu conversation is offered the Zulu greeting and the English outage text.
    offered = await agent.call("GET", "/api/v1/support/canned-responses?offer=zu")
    assert [(c["name"], c["language"]) for c in offered.body["items"]] == [
        ("greeting", "zu"),
        ("water_outage", "en"),
    ]
    zulu = await agent.call("GET", "/api/v1/support/canned-responses?language=zu")
    assert [c["text"] for c in zulu.body["items"]] == ["Sawubona, ngingakusiza ngani?"]

    changed = await supervisor.call(
        "PATCH",
        f"/api/v1/support/canned-responses/{made[2]['id']}",
        {"text": "The water is off until 20:00."},
    )
    assert changed.status == 200 and changed.body["text"] == "The water is off until 20:00."
    gone = await supervisor.call("DELETE", f"/api/v1/support/canned-responses/{made[0]['id']}")
    assert gone.status == 200
    english = await agent.call("GET", "/api/v1/support/canned-responses?offer=en")
    assert [c["name"] for c in english.body["items"]] == ["water_outage"]
    async with house.sessions() as session:
        actions = (
            await session.scalars(
                select(AuditLog.action)
                .where(AuditLog.action.like("canned.%"))
                .order_by(AuditLog.id)
            )
        ).all()
    assert list(actions) == ["canned.create"] * 3 + ["canned.update", "canned.delete"]


async def test_a_conversations_context_and_the_sms_cost_of_a_draft(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    ticket = await seed_ticket(house.sessions, locale="xh")
    async with house.sessions() as session, session.begin():
        row = await session.get(SupportTicket, ticket)
        assert row is not None and row.address is not None
        for channel, direction, text in [
            ("telegram", "in", "my road has a hole"),
            ("sms", "in", "agent"),
        ]:
            session.add(
                MessageLog(
                    direction=direction,
                    channel=channel,
                    address=row.address,
                    resident_id=row.resident_id,
                    text=text,
                )
            )
        address = row.address
    envelope = {
        "form": {
            "form": "pothole",
            "version": 1,
            "locale": "xh",
            "at": "danger",
            "answers": {"danger": True},
        }
    }
    await house.services.turn_loop.states.set(ConversationKey("sms", address), envelope)

    context = await agent.call("GET", f"/api/v1/support/tickets/{ticket}/context")
    assert context.status == 200, context
    assert [(m["channel"], m["text"]) for m in context.body["history"]] == [
        ("telegram", "my road has a hole"),
        ("sms", "agent"),
    ]
    assert context.body["form"]["id"] == "pothole"
    assert {"step": "danger", "label": "Dangerous", "answer": "Yes"} in context.body["form"][
        "answers"
    ]
    assert context.body["channel"]["name"] == "sms"

    async def cost(text: str) -> dict[str, Any]:
        answer = await agent.call("POST", "/api/v1/support/sms-count", {"text": text})
        assert answer.status == 200, answer
        return dict(answer.body)

    assert await cost("Molo, ndingakunceda njani?") == {
        "characters": 26,
        "encoding": "GSM-7",
        "segments": 1,
        "messages": 1,
    }
    # A curly apostrophe is sent as a plain one; an Afrikaans ê needs UCS-2.
    assert (await cost("It’s fixed"))["encoding"] == "GSM-7"
    assert (await cost("Dankie, dit is reg so. Ons sê baie dankie."))["encoding"] == "UCS-2"
    assert (await cost("a" * 161))["segments"] == 2
    assert (await cost("ê" * 71))["segments"] == 2
    async with house.sessions() as session:
        looked = await session.scalar(
            select(AuditLog.subject).where(AuditLog.action == "support.context")
        )
    assert looked == f"ticket:{ticket}"


async def test_a_supervisor_sees_each_agents_load(house: StaffHouse) -> None:
    supervisor = await house.member("super@city.gov", ["supervisor"])
    agent = await house.member("agent@city.gov", ["agent"])
    await house.member("admin@city.gov", ["admin"])
    for _ in range(2):
        ticket = await seed_ticket(house.sessions)
        assert (await agent.call("POST", f"/api/v1/support/tickets/{ticket}/claim")).status == 200
    loads = await supervisor.call("GET", "/api/v1/support/agents")
    assert loads.status == 200, loads
    assert [(a["email"], a["held"]) for a in loads.body["items"]] == [
        ("agent@city.gov", 2),
        ("super@city.gov", 0),
    ]
    refused = await agent.call("GET", "/api/v1/support/agents")
    assert (refused.status, refused.code) == (403, "forbidden")


@pytest.fixture
async def whatsapp_house(
    aiohttp_client: Callable[..., Any],
    tmp_path: Path,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[StaffHouse]:
    """The staff house on a city with WhatsApp, and a template for agents' replies."""
    monkeypatch.setenv("TWILIO_WHATSAPP_TEMPLATES", '{"agent_reply": "HX0123"}')
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
        session_secret="test-secret",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_whatsapp_from="whatsapp:+27211234567",
        twilio_api_base_url="http://127.0.0.1:9",  # nothing is sent here
    )
    app = await create_app(settings, workers=False)
    services = app[SERVICES_KEY]
    services.staff_auth = fast_authentication(services, clock)
    app[CLOCK_KEY] = clock.seconds
    client = await aiohttp_client(app)
    house = StaffHouse(services, str(client.make_url("/")), clock)
    yield house
    await house.close()


async def test_whatsapps_24_hour_window_is_shown_with_the_template_to_reopen_it(
    whatsapp_house: StaffHouse,
) -> None:
    house = whatsapp_house
    agent = await house.member("agent@city.gov", ["agent"])
    async with house.sessions() as session, session.begin():
        resident = Resident(locale="en")
        session.add(resident)
        await session.flush()
        address = ResidentAddress(
            resident_id=resident.id,
            channel="whatsapp",
            address="+27821112222",
            last_inbound_at=utc_now() - timedelta(hours=2),
        )
        ticket = SupportTicket(resident_id=resident.id, channel="whatsapp", address="+27821112222")
        session.add_all([address, ticket])
        await session.flush()
        ticket_id = ticket.id

    async def window() -> dict[str, Any]:
        answer = await agent.call("GET", f"/api/v1/support/tickets/{ticket_id}/context")
        assert answer.status == 200, answer
        return dict(answer.body["channel"])

    shown = await window()
    assert (shown["name"], shown["configured"], shown["window_open"]) == ("whatsapp", True, True)
    assert shown["template_available"] is True and shown["sms_segments"] is None
    async with house.sessions() as session, session.begin():
        row = await session.scalar(select(ResidentAddress))
        assert row is not None
        row.last_inbound_at = utc_now() - timedelta(hours=25)
    shown = await window()
    assert shown["window_open"] is False, "a reply needs the template now"
    assert shown["template_available"] is True
