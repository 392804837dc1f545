"""Staff start a conversation over real HTTP (SQLite and PostgreSQL): an agent finds a resident by
a report's reference and takes the conversation over although the resident never asked: held by
that agent at once (within their limit and wards), the resident told in their language,
audited; two agents at once open one ticket; a transfer carries a note for whoever carries on."""

from __future__ import annotations

import asyncio
from itertools import count

import pytest
from sqlalchemy import select

from storage.models import (
    AuditLog,
    Resident,
    ResidentAddress,
    ResidentNotification,
    Submission,
    SupportMessage,
    SupportTicket,
)
from storage.types import utc_now
from tests.web.staff_members import StaffHouse

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

FIND = "/api/v1/support/conversations?reference="
_REFERENCES = count(100)


async def _resident(
    house: StaffHouse, *, ward: str = "94", locale: str = "zu", opted_out: bool = False
) -> tuple[str, int]:
    """A resident on SMS and Telegram with one report in ``ward``: its reference, and the
    resident's id."""
    reference = f"CT-T{next(_REFERENCES):05d}"
    async with house.sessions() as session, session.begin():
        resident = Resident(locale=locale, opted_out_at=utc_now() if opted_out else None)
        session.add(resident)
        await session.flush()
        session.add_all(
            [
                ResidentAddress(
                    resident_id=resident.id,
                    channel="sms",
                    address=f"+2783555{resident.id:04d}",
                    last_inbound_at=utc_now(),
                ),
                ResidentAddress(
                    resident_id=resident.id, channel="telegram", address=f"77{resident.id:04d}"
                ),
                Submission(
                    reference=reference,
                    resident_id=resident.id,
                    channel="sms",
                    form_id="pothole",
                    form_version=1,
                    service_code="ROADS-POTHOLE",
                    locale=locale,
                    answers={},
                    ward=ward,
                ),
            ]
        )
        return reference, resident.id


async def test_an_agent_finds_a_resident_and_takes_the_conversation_over(
    house: StaffHouse,
) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    other = await house.member("other@city.gov", ["agent"])
    reference, resident_id = await _resident(house, locale="zu")

    found = await agent.call("GET", FIND + reference.lower())
    assert found.status == 200, found
    assert [(c["channel"], c["language"], c["open_ticket_id"]) for c in found.body["items"]] == [
        ("sms", "zu", None),
        ("telegram", "zu", None),
    ]
    sms = found.body["items"][0]
    assert sms["address_masked"].endswith(f"{resident_id:04d}")
    assert sms["address_masked"].startswith("*"), "the number is masked"

    path = f"/api/v1/support/conversations/{sms['conversation_id']}/takeover"
    taken = await agent.call("POST", path)
    assert taken.status == 201, taken
    ticket = taken.body
    assert (ticket["state"], ticket["agent_id"], ticket["reason"], ticket["ward"]) == (
        "held",
        agent.account_id,
        "staff",
        "94",
    )
    # Of two agents, the second is told it is open already (and where).
    again = await other.call("POST", path)
    assert (again.status, again.code) == (409, "conflict")
    assert str(ticket["id"]) in again.body["error"]["message"]
    shown = await other.call("GET", FIND + reference)
    assert shown.body["items"][0]["open_ticket_id"] == ticket["id"]

    async with house.sessions() as session:
        told = (await session.scalars(select(ResidentNotification))).all()
        audited = (
            await session.execute(select(AuditLog.action, AuditLog.subject).order_by(AuditLog.id))
        ).all()
        lines = (await session.scalars(select(SupportMessage.text))).all()
    # Told once, on that channel, in isiZulu, through the ordered outbox.
    assert [(n.channel, n.locale, n.purpose, n.resident_id) for n in told] == [
        ("sms", "zu", "agent_reply", resident_id)
    ]
    assert (
        told[0].text
        != "A person from the city has joined this conversation and will write to you here."
    )
    assert ("support.lookup", f"resident:{resident_id}") in audited
    assert ("support.takeover", f"ticket:{ticket['id']}") in audited
    assert lines == ["opened by an agent from the console"]

    # The agent holds it like any claimed conversation: replies, and hands back.
    said = await agent.call(
        "POST", f"/api/v1/support/tickets/{ticket['id']}/messages", {"text": "Sawubona"}
    )
    assert said.status == 200, said
    back = await agent.call(
        "POST", f"/api/v1/support/tickets/{ticket['id']}/handback", {"outcome": "resolved"}
    )
    assert back.body["state"] == "closed"


async def test_scope_limit_and_opt_out_are_respected(house: StaffHouse) -> None:
    ward9 = await house.member("ward9@city.gov", ["agent"], wards=["9"])
    analyst = await house.member("analyst@city.gov", ["analyst"])
    agent = await house.member("agent@city.gov", ["agent"])
    reference, _ = await _resident(house, ward="94")

    refused = await ward9.call("GET", FIND + reference)
    assert refused.status == 404, "another ward's report is not there for a ward 9 agent"
    assert (await agent.call("GET", FIND + "CT-NOSUCH")).status == 404
    assert (await agent.call("GET", "/api/v1/support/conversations")).status == 400
    assert (await analyst.call("GET", FIND + reference)).status == 403
    found = (await agent.call("GET", FIND + reference)).body["items"]
    takeover = f"/api/v1/support/conversations/{found[0]['conversation_id']}/takeover"
    assert (await ward9.call("POST", takeover)).status == 404
    assert (await analyst.call("POST", takeover)).status == 403

    stopped, _ = await _resident(house, opted_out=True)
    gone = (await agent.call("GET", FIND + stopped)).body["items"]
    assert gone[0]["opted_out"] is True
    answer = await agent.call(
        "POST", f"/api/v1/support/conversations/{gone[0]['conversation_id']}/takeover"
    )
    assert (answer.status, answer.code) == (409, "conflict")

    # The per-agent limit (5) holds for conversations they open as for those they claim.
    limit = house.services.settings.support_agent_limit
    for _ in range(limit):
        ref, _ = await _resident(house)
        first = (await agent.call("GET", FIND + ref)).body["items"][0]
        opened = await agent.call(
            "POST", f"/api/v1/support/conversations/{first['conversation_id']}/takeover"
        )
        assert opened.status == 201, opened
    over = await agent.call("POST", takeover)
    assert (over.status, over.code) == (409, "conflict")
    assert "hand one back" in over.body["error"]["message"]


async def test_two_agents_at_once_open_one_conversation(house: StaffHouse) -> None:
    agents = [await house.member(f"a{i}@city.gov", ["agent"]) for i in range(2)]
    reference, _ = await _resident(house)
    found = (await agents[0].call("GET", FIND + reference)).body["items"][0]
    path = f"/api/v1/support/conversations/{found['conversation_id']}/takeover"
    answers = await asyncio.gather(*(a.call("POST", path) for a in agents))
    assert sorted(a.status for a in answers) == [201, 409]
    async with house.sessions() as session:
        tickets = (await session.scalars(select(SupportTicket))).all()
    assert len(tickets) == 1


async def test_a_transfer_to_a_team_carries_a_note(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    reference, _ = await _resident(house)
    found = (await agent.call("GET", FIND + reference)).body["items"][0]
    ticket = (
        await agent.call(
            "POST", f"/api/v1/support/conversations/{found['conversation_id']}/takeover"
        )
    ).body
    path = f"/api/v1/support/tickets/{ticket['id']}"
    moved = await agent.call(
        "POST", path + "/transfer", {"team": "zu", "note": "Asks about the water bill."}
    )
    assert (moved.status, moved.body["state"], moved.body["team"]) == (200, "waiting", "zu")
    shown = await agent.call("GET", path)
    assert [(m["direction"], m["text"]) for m in shown.body["messages"]][-2:] == [
        ("system", "transferred to team zu"),
        ("note", "Asks about the water bill."),
    ]
    async with house.sessions() as session:
        details = await session.scalar(
            select(AuditLog.details).where(AuditLog.action == "support.transfer")
        )
    assert details is not None and details["note"] is True and details["to_team"] == "zu"
    blank = await agent.call("POST", path + "/transfer", {"team": "zu", "note": "x" * 1601})
    assert blank.status == 400
