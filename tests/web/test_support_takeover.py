"""Support takeover over real HTTP: a Telegram resident asks for a person and hears their place
in the queue; two agents race for the conversation and one wins; the bot falls silent while the
agent and the resident talk (each side reaching the other); STOP ends it; a handback gives the
resident back to the bot, in their language. Every step is in the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.models import AuditLog, SupportMessage, SupportTicket
from tests.e2e.city import City, TelegramResident, eventually, running_city
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.notifier.test_broadcasts import Official, official


@pytest.fixture
async def city(tmp_path: Path) -> AsyncIterator[City]:
    async with (
        FakeTelegram() as telegram,
        FakeTwilio() as twilio,
        running_city(tmp_path, telegram=telegram, twilio=twilio) as c,
    ):
        yield c


async def _asks_for_a_person(city: City, chat_id: int = 5550001) -> TelegramResident:
    resident = TelegramResident(city, chat_id)
    await resident.say(("text", "hello", 0))
    await resident.say(("text", "agent", 0))
    return resident


async def _waiting(agent: Official) -> list[dict[str, Any]]:
    status, queue = await agent.call("GET", "/api/v1/support/queue")
    assert status == 200, queue
    return list(queue["items"])


async def test_an_agent_takes_over_talks_and_hands_back(city: City) -> None:
    resident = await _asks_for_a_person(city)
    assert any("number 1 in the queue" in t for t in resident.received())
    agent = await official(city, "thandi@city.gov", ["agent"])
    (ticket,) = await _waiting(agent)
    assert ticket["channel"] == "telegram" and ticket["address_masked"] == "***0001"

    status, claimed = await agent.call("POST", f"/api/v1/support/tickets/{ticket['id']}/claim")
    assert (status, claimed["state"]) == (200, "held")
    before = len(resident.received())
    await resident.say(("text", "my street has had no water since Monday", 0))
    await asyncio.sleep(1.2)  # the conversation is with a person: the bot says nothing
    assert len(resident.received()) == before

    status, sent = await agent.call(
        "POST",
        f"/api/v1/support/tickets/{ticket['id']}/messages",
        {"text": "Hello, I am Thandi. Which street is it?"},
    )
    assert status == 200, sent
    await eventually(lambda: _said(resident, "Hello, I am Thandi. Which street is it?"))
    await agent.call(
        "POST", f"/api/v1/support/tickets/{ticket['id']}/notes", {"text": "probably the main"}
    )
    status, shown = await agent.call("GET", f"/api/v1/support/tickets/{ticket['id']}")
    lines = [(m["direction"], m["text"]) for m in shown["messages"]]
    assert ("resident", "my street has had no water since Monday") in lines
    assert ("agent", "Hello, I am Thandi. Which street is it?") in lines
    assert ("note", "probably the main") in lines

    status, back = await agent.call(
        "POST", f"/api/v1/support/tickets/{ticket['id']}/handback", {"outcome": "resolved"}
    )
    assert (back["state"], back["outcome"]) == ("closed", "resolved")
    await eventually(lambda: _said(resident, "You are talking to the city's assistant again."))
    await asyncio.sleep(1.1)  # every process sees the handback within a second
    asked = len(resident.received())
    await resident.say(("text", "menu", 0))
    assert len(resident.received()) > asked, "the bot answers again"
    async with city.services.session_factory() as session:
        actions = (
            await session.scalars(
                select(AuditLog.action).where(AuditLog.subject == f"ticket:{ticket['id']}")
            )
        ).all()
    assert list(actions) == [
        "support.claim",
        "support.reply",
        "support.note",
        "support.view",
        "support.handback",
    ]


async def _said(resident: TelegramResident, start: str) -> bool:
    return any(t.startswith(start) for t in resident.received())


async def test_two_agents_race_and_one_wins(city: City) -> None:
    await _asks_for_a_person(city)
    first = await official(city, "a1@city.gov", ["agent"])
    second = await official(city, "a2@city.gov", ["agent"])
    (ticket,) = await _waiting(first)
    path = f"/api/v1/support/tickets/{ticket['id']}/claim"
    answers = await asyncio.gather(first.call("POST", path), second.call("POST", path))
    assert sorted(status for status, _ in answers) == [200, 409]
    loser = next(body for status, body in answers if status == 409)
    assert "taken by someone else" in loser["error"]["message"]
    status, not_theirs = await (first if answers[1][0] == 200 else second).call(
        "POST", f"/api/v1/support/tickets/{ticket['id']}/messages", {"text": "hi"}
    )
    assert (status, not_theirs["error"]["code"]) == (409, "conflict")


async def test_stop_during_a_takeover_ends_it_and_tells_the_agent(city: City) -> None:
    resident = await _asks_for_a_person(city)
    agent = await official(city, "a1@city.gov", ["agent"])
    (ticket,) = await _waiting(agent)
    await agent.call("POST", f"/api/v1/support/tickets/{ticket['id']}/claim")
    await resident.say(("text", "STOP", 0))
    async with city.services.session_factory() as session:
        row = await session.get(SupportTicket, ticket["id"])
        told = (
            await session.scalars(
                select(SupportMessage.text).where(SupportMessage.direction == "system")
            )
        ).all()
    assert row is not None and (row.state, row.outcome) == ("closed", "opted_out")
    assert any("STOP" in t for t in told if t)
    status, refused = await agent.call(
        "POST", f"/api/v1/support/tickets/{ticket['id']}/messages", {"text": "hello?"}
    )
    assert (status, refused["error"]["code"]) == (409, "conflict")


async def test_an_agent_holds_at_most_the_limit(city: City) -> None:
    for n in range(6):
        await _asks_for_a_person(city, 5550100 + n)
    agent = await official(city, "a1@city.gov", ["agent"])
    tickets = await _waiting(agent)
    assert len(tickets) == 6
    statuses = [
        (await agent.call("POST", f"/api/v1/support/tickets/{t['id']}/claim"))[0] for t in tickets
    ]
    assert statuses == [200] * 5 + [409]


async def test_a_supervisor_reassigns_and_a_ward_agent_sees_only_their_wards(city: City) -> None:
    await _asks_for_a_person(city)
    supervisor = await official(city, "s@city.gov", ["supervisor"])
    agent = await official(city, "a1@city.gov", ["agent"])
    ward_agent = await official(city, "w@city.gov", ["agent"], wards=["9"])
    assert await _waiting(ward_agent) == []  # the resident's ward is not known
    (ticket,) = await _waiting(supervisor)
    status, given = await supervisor.call(
        "POST", f"/api/v1/support/tickets/{ticket['id']}/assign", {"account_id": agent.account_id}
    )
    assert (status, given["state"], given["agent_id"]) == (200, "held", agent.account_id)
    status, refused = await agent.call(
        "POST", f"/api/v1/support/tickets/{ticket['id']}/assign", {"account_id": None}
    )
    assert (status, refused["error"]["code"]) == (403, "forbidden")
