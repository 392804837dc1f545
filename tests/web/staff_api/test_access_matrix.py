"""Every /api/v1 endpoint x every role, anonymous, ward-scoped accounts and an API token: the
right 200/201, 401 or 403, and nothing of another ward visible to a scoped account.

What each endpoint needs is written here by hand (not read from the route table), and what each
role may do comes from ``staff.roles`` (whose table is docs/staff.md's): so a route that
declares the wrong permission or scope fails here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from bot.web.staff_api import ENDPOINTS
from staff.roles import Role, parse_roles, permissions_for
from tests.web.staff_members import (
    Answer,
    Member,
    StaffHouse,
    seed_request,
    seed_suggestion,
    seed_ticket,
)

# operation -> (the permission it needs or None, city-wide only?, status when allowed)
EXPECTED: dict[str, tuple[str | None, bool, int]] = {
    "openapi": (None, False, 200),
    "signIn": (None, False, 200),
    # Single sign-on is off in this house: a clear 404 for anyone (tests/web/staff_api/test_sso.py).
    "startSso": (None, False, 404),
    "finishSso": (None, False, 404),
    "whoAmI": (None, False, 200),
    "signOut": (None, False, 200),
    "changePassword": (None, False, 200),
    "listAccounts": ("accounts.manage", True, 200),
    "createAccount": ("accounts.manage", True, 201),
    "getAccount": ("accounts.manage", True, 200),
    "changeAccount": ("accounts.manage", True, 200),
    "disableAccount": ("accounts.manage", True, 200),
    "listTokens": ("tokens.manage", True, 200),
    "issueToken": ("tokens.manage", True, 201),
    "revokeToken": ("tokens.manage", True, 200),
    "listAudit": ("audit.view", True, 200),
    "verifyAudit": ("audit.view", True, 200),
    "findResidents": ("residents.export", True, 200),
    "exportResident": ("residents.export", True, 200),
    "eraseResident": ("residents.erase", True, 200),
    "listBroadcasts": ("broadcasts.create", False, 200),
    "createBroadcast": ("broadcasts.create", False, 201),
    "getBroadcast": ("broadcasts.create", False, 200),
    "previewBroadcast": ("broadcasts.create", False, 200),
    "sendBroadcast": ("broadcasts.create", False, 200),
    "approveBroadcast": ("broadcasts.approve", False, 200),
    "cancelBroadcast": ("broadcasts.create", False, 200),
    "resendFailed": ("broadcasts.create", False, 200),
    "reportBroadcast": ("broadcasts.create", False, 200),
    "listIncidents": ("incidents.declare", False, 200),
    "declareIncident": ("incidents.declare", False, 201),
    "getIncident": ("incidents.declare", False, 200),
    "changeIncident": ("incidents.declare", False, 200),
    "listIncidentSuggestions": ("incidents.review_suggestions", False, 200),
    "incidentSuggestionPrecision": ("analytics.view", False, 200),
    "getIncidentSuggestion": ("incidents.review_suggestions", False, 200),
    "confirmIncidentSuggestion": ("incidents.review_suggestions", False, 200),
    "dismissIncidentSuggestion": ("incidents.review_suggestions", False, 200),
    "wardDigest": ("analytics.view", False, 200),
    "listQueue": ("conversations.view_queue", False, 200),
    "getTicket": ("conversations.view_queue", False, 200),
    "claimTicket": ("conversations.take_over", False, 200),
    "sendAgentMessage": ("conversations.take_over", False, 200),
    "addNote": ("conversations.take_over", False, 200),
    "handBack": ("conversations.take_over", False, 200),
    "assignTicket": ("conversations.manage_queue", False, 200),
    "transferTicket": ("conversations.take_over", False, 200),
    "findConversations": ("conversations.view_queue", False, 200),
    "takeOverConversation": ("conversations.take_over", False, 201),
    # This house has no WhatsApp: once the permission lets the call through, a clear 400
    # (tests/web/test_support_staff_started.py sends one).
    "sendTemplate": ("conversations.take_over", False, 400),
    "getSupportStats": ("conversations.manage_queue", False, 200),
    "supportEvents": ("conversations.view_queue", False, 200),
    "getTicketContext": ("conversations.view_queue", False, 200),
    "countSms": ("conversations.take_over", False, 200),
    "listCannedResponses": ("conversations.view_queue", False, 200),
    "createCannedResponse": ("conversations.manage_queue", True, 201),
    "changeCannedResponse": ("conversations.manage_queue", True, 200),
    "deleteCannedResponse": ("conversations.manage_queue", True, 200),
    "listAgents": ("conversations.manage_queue", False, 200),
    "listRequests": ("requests.view", False, 200),
    "changeRequest": ("requests.update", False, 200),
    "revealPhone": ("residents.view_personal", False, 200),
    "openDataRequests": (None, False, 200),
    "openDataRequestsCsv": (None, False, 200),
    "openDataPerformance": (None, False, 200),
    "openDataPerformanceCsv": (None, False, 200),
    "openDataMetadata": (None, False, 200),
    "openDataTransport": (None, False, 200),
    "openDataTransportCsv": (None, False, 200),
    "listEquityAlerts": ("analytics.view", False, 200),
    "analystExport": ("analytics.view", False, 200),
}
PUBLIC = {
    "openapi",
    "signIn",
    "startSso",
    "finishSso",
    "openDataRequests",
    "openDataRequestsCsv",
    "openDataPerformance",
    "openDataPerformanceCsv",
    "openDataMetadata",
    "openDataTransport",
    "openDataTransportCsv",
}
# Public open data: the same answer for anyone.
_OPEN_DATA = {
    "openDataRequests": "/api/v1/open-data/requests",
    "openDataRequestsCsv": "/api/v1/open-data/requests.csv",
    "openDataPerformance": "/api/v1/open-data/performance",
    "openDataPerformanceCsv": "/api/v1/open-data/performance.csv",
    "openDataTransport": "/api/v1/open-data/transport",
    "openDataTransportCsv": "/api/v1/open-data/transport.csv",
    "openDataMetadata": "/api/v1/open-data/metadata.json",
}


@dataclass
class Caller:
    name: str
    member: Member
    roles: frozenset[Role]
    wards: list[str] | None
    via: str  # anonymous, session or token


def expected_status(operation: str, caller: Caller) -> int:
    permission, city_only, ok = EXPECTED[operation]
    if operation in PUBLIC:
        return ok
    if caller.via == "anonymous":
        return 401
    if operation == "changePassword" and caller.via == "token":
        return 403  # a password is changed by its owner, signed in
    if permission is not None and permission not in permissions_for(caller.roles):
        return 403
    if city_only and caller.wards is not None:
        return 403
    return ok


class World:
    """Fresh targets for each call, so every allowed call can succeed."""

    def __init__(self, house: StaffHouse) -> None:
        self.house = house
        self.serial = itertools.count(1)

    async def target_account(self) -> int:
        target = await self.house.member(f"t{next(self.serial)}@city.gov", ["agent"], sign_in=False)
        assert target.account_id is not None
        return target.account_id

    async def target_token(self) -> int:
        email = f"t{next(self.serial)}@city.gov"
        await self.house.member(email, ["agent"], sign_in=False)
        await self.house.token_for(email, ["agent"])
        async with self.house.sessions() as session:
            from sqlalchemy import func, select

            from storage.models import StaffToken

            return int(await session.scalar(select(func.max(StaffToken.id))) or 0)

    async def target_resident(self) -> int:
        async with self.house.sessions() as session, session.begin():
            from storage.models import Resident

            resident = Resident(locale="en")
            session.add(resident)
            await session.flush()
            return resident.id

    async def target_broadcast(self, state: str = "draft") -> int:
        """A ward 1 broadcast by an author of its own (so any approver may approve it)."""
        from storage.models import Broadcast

        author = await self.house.member(
            f"author{next(self.serial)}@city.gov", ["broadcaster"], sign_in=False
        )
        async with self.house.sessions() as session, session.begin():
            row = Broadcast(
                author_id=author.account_id,
                title="t",
                texts={"en": "Water off"},
                target={"wards": ["1"], "everyone": False},
                topic="water",
                channels=["sms"],
                urgency="emergency",
                state=state,
            )
            session.add(row)
            await session.flush()
            return row.id

    async def target_incident(self, body: dict[str, object]) -> int:
        author = await self.house.member(
            f"declarer{next(self.serial)}@city.gov", ["broadcaster"], sign_in=False
        )
        async with self.house.sessions() as session, session.begin():
            from storage.models import Incident

            row = Incident(
                author_id=author.account_id,
                title=str(body["title"]),
                services=["no_water"],
                topic="water",
                wards=["1"],
                texts={"en": "No water"},
            )
            session.add(row)
            await session.flush()
            return row.id

    async def target_suggestion(self) -> int:
        """A ward 1 burst of "no water" reports, waiting for a decision."""
        return await seed_suggestion(self.house.sessions, ward="1")

    async def target_ticket(self) -> int:
        """A resident in ward 1 waiting for a person."""
        return await seed_ticket(self.house.sessions, ward="1")

    async def target_conversation(self) -> int:
        """A resident in ward 1 with a report and an SMS address: the address row's id."""
        from storage.models import Resident, ResidentAddress, Submission

        n = next(self.serial)
        async with self.house.sessions() as session, session.begin():
            resident = Resident(locale="en")
            session.add(resident)
            await session.flush()
            reach = ResidentAddress(
                resident_id=resident.id, channel="sms", address=f"+2783777{n:04d}"
            )
            session.add_all(
                [
                    reach,
                    Submission(
                        reference=f"CT-TK{n:04d}",
                        resident_id=resident.id,
                        channel="sms",
                        form_id="pothole",
                        form_version=1,
                        service_code="ROADS-POTHOLE",
                        locale="en",
                        answers={},
                        ward="1",
                    ),
                ]
            )
            await session.flush()
            return reach.id

    async def target_canned(self) -> int:
        from storage.models import CannedResponse

        async with self.house.sessions() as session, session.begin():
            row = CannedResponse(
                name=f"c{next(self.serial)}", locale="en", text="Hello", updated_by="test"
            )
            session.add(row)
            await session.flush()
            return row.id

    async def call(self, operation: str, caller: Caller) -> Answer:
        m = caller.member
        n = next(self.serial)
        if operation == "openapi":
            return await m.call("GET", "/api/v1/openapi.json")
        if operation in _OPEN_DATA:
            return await m.call("GET", _OPEN_DATA[operation])
        if operation == "listEquityAlerts":
            return await m.call("GET", "/api/v1/equity-alerts")
        if operation == "analystExport":
            return await m.call("GET", "/api/v1/analytics/requests.csv")
        if operation == "signIn":
            if caller.via != "session":
                # Anonymous (and token callers) sign in as a spare agent of their own.
                spare = await self.house.member(f"s{n}@city.gov", ["agent"], sign_in=False)
                return await spare.sign_in()
            return await m.sign_in()
        if operation == "startSso":
            return await m.call("GET", "/api/v1/session/sso")
        if operation == "finishSso":
            return await m.call("GET", "/api/v1/session/sso/callback?code=c&state=s")
        if operation == "whoAmI":
            return await m.call("GET", "/api/v1/session")
        if operation == "signOut":
            answer = await m.call("DELETE", "/api/v1/session")
            if caller.via == "session" and answer.status == 200:
                assert (await m.sign_in()).status == 200
            return answer
        if operation == "changePassword":
            new = f"a new pass phrase {n}"
            answer = await m.call(
                "PUT",
                "/api/v1/session/password",
                {"current_password": m.password or "x", "new_password": new},
            )
            if answer.status == 200:
                m.password = new
            return answer
        if operation == "listAccounts":
            return await m.call("GET", "/api/v1/accounts?limit=5")
        if operation == "createAccount":
            return await m.call(
                "POST", "/api/v1/accounts", {"email": f"c{n}@city.gov", "roles": ["analyst"]}
            )
        if operation == "getAccount":
            return await m.call("GET", f"/api/v1/accounts/{await self.target_account()}")
        if operation == "changeAccount":
            target = await self.target_account()
            return await m.call("PATCH", f"/api/v1/accounts/{target}", {"wards": ["9"]})
        if operation == "disableAccount":
            return await m.call("DELETE", f"/api/v1/accounts/{await self.target_account()}")
        if operation == "listTokens":
            return await m.call("GET", "/api/v1/tokens")
        if operation == "issueToken":
            target = await self.target_account()
            return await m.call(
                "POST", "/api/v1/tokens", {"account_id": target, "roles": ["agent"]}
            )
        if operation == "revokeToken":
            return await m.call("DELETE", f"/api/v1/tokens/{await self.target_token()}")
        if operation == "listAudit":
            return await m.call("GET", "/api/v1/audit?action=sign_in.&limit=3")
        if operation == "verifyAudit":
            return await m.call("POST", "/api/v1/audit/verify")
        if operation == "findResidents":
            return await m.call("GET", "/api/v1/residents?address=%2B27831234567")
        if operation == "exportResident":
            return await m.call("GET", f"/api/v1/residents/{await self.target_resident()}/export")
        if operation == "eraseResident":
            target = await self.target_resident()
            return await m.call("POST", f"/api/v1/residents/{target}/erase", {"reason": "test"})
        if operation == "listBroadcasts":
            return await m.call("GET", "/api/v1/broadcasts")
        if operation == "createBroadcast":
            body = {"title": "t", "text_en": "Water off", "wards": ["1"]}
            return await m.call("POST", "/api/v1/broadcasts", body)
        broadcast_paths = {
            "getBroadcast": ("GET", "", "draft"),
            "previewBroadcast": ("GET", "/preview", "draft"),
            "sendBroadcast": ("POST", "/send", "draft"),
            "approveBroadcast": ("POST", "/approve", "awaiting_approval"),
            "cancelBroadcast": ("POST", "/cancel", "scheduled"),
            "resendFailed": ("POST", "/resend-failed", "sent"),
            "reportBroadcast": ("GET", "/report", "sent"),
        }
        if operation in broadcast_paths:
            method, suffix, state = broadcast_paths[operation]
            target = await self.target_broadcast(state)
            return await m.call(method, f"/api/v1/broadcasts/{target}{suffix}")
        incident = {
            "title": "Burst main",
            "services": ["no_water"],
            "wards": ["1"],
            "text_en": "No water",
        }
        if operation == "listIncidents":
            return await m.call("GET", "/api/v1/incidents")
        if operation == "declareIncident":
            return await m.call("POST", "/api/v1/incidents", incident)
        if operation in ("getIncident", "changeIncident"):
            target = await self.target_incident(incident)
            if operation == "getIncident":
                return await m.call("GET", f"/api/v1/incidents/{target}")
            return await m.call("PATCH", f"/api/v1/incidents/{target}", {"status": "resolved"})
        if operation == "listIncidentSuggestions":
            return await m.call("GET", "/api/v1/incident-suggestions?status=suggested")
        if operation == "incidentSuggestionPrecision":
            return await m.call("GET", "/api/v1/incident-suggestions/precision?weeks=4")
        if operation in (
            "getIncidentSuggestion",
            "confirmIncidentSuggestion",
            "dismissIncidentSuggestion",
        ):
            path = f"/api/v1/incident-suggestions/{await self.target_suggestion()}"
            if operation == "getIncidentSuggestion":
                return await m.call("GET", path)
            if operation == "confirmIncidentSuggestion":
                return await m.call("POST", f"{path}/confirm", {})
            return await m.call("POST", f"{path}/dismiss", {"reason": "one school, one event"})
        if operation == "wardDigest":
            return await m.call("GET", "/api/v1/digests?ward=1")
        if operation == "listQueue":
            return await m.call("GET", "/api/v1/support/queue")
        if operation in ("getTicket", "claimTicket", "addNote", "assignTicket"):
            target = await self.target_ticket()
            path = f"/api/v1/support/tickets/{target}"
            if operation == "getTicket":
                return await m.call("GET", path)
            if operation == "claimTicket":
                return await m.call("POST", f"{path}/claim")
            if operation == "addNote":
                return await m.call("POST", f"{path}/notes", {"text": "a note"})
            return await m.call("POST", f"{path}/assign", {"account_id": None})
        if operation == "getSupportStats":
            return await m.call("GET", "/api/v1/support/stats")
        if operation == "findConversations":
            return await m.call("GET", "/api/v1/support/conversations?reference=CT-WARD1")
        if operation == "takeOverConversation":
            target = await self.target_conversation()
            taken = await m.call("POST", f"/api/v1/support/conversations/{target}/takeover")
            if taken.status == 201:  # handed back: the agent's limit is for the calls after
                path = f"/api/v1/support/tickets/{taken.body['id']}/handback"
                assert (await m.call("POST", path, {"outcome": "resolved"})).status == 200
            return taken
        if operation in ("sendAgentMessage", "handBack", "transferTicket", "sendTemplate"):
            # Only the agent holding a conversation speaks in it, passes it on or hands it back.
            target = await self.target_ticket()
            path = f"/api/v1/support/tickets/{target}"
            claimed = await m.call("POST", f"{path}/claim")
            if claimed.status != 200:
                return claimed
            if operation == "sendAgentMessage":
                return await m.call("POST", f"{path}/messages", {"text": "hello"})
            if operation == "transferTicket":
                return await m.call("POST", f"{path}/transfer", {"team": "water"})
            if operation == "sendTemplate":
                sent = await m.call("POST", f"{path}/template", {"template": "support_reopen"})
                await m.call("POST", f"{path}/handback", {"outcome": "resolved"})
                return sent
            return await m.call("POST", f"{path}/handback", {"outcome": "resolved"})
        if operation == "supportEvents":
            # An endless stream: its status and headers are the answer.
            target = await self.target_ticket()
            headers = {"Authorization": f"Bearer {m.token}"} if m.token else {}
            async with m.http.get(
                f"/api/v1/support/events?ticket={target}", headers=headers
            ) as response:
                if response.status != 200:
                    return Answer(response.status, await response.json(content_type=None))
                return Answer(200, {})
        if operation == "getTicketContext":
            return await m.call(
                "GET", f"/api/v1/support/tickets/{await self.target_ticket()}/context"
            )
        if operation == "countSms":
            return await m.call("POST", "/api/v1/support/sms-count", {"text": "Hello"})
        if operation == "listCannedResponses":
            return await m.call("GET", "/api/v1/support/canned-responses?offer=zu")
        if operation == "createCannedResponse":
            body = {"name": f"n{n}", "language": "en", "text": "Hello"}
            return await m.call("POST", "/api/v1/support/canned-responses", body)
        if operation == "changeCannedResponse":
            target = await self.target_canned()
            path = f"/api/v1/support/canned-responses/{target}"
            return await m.call("PATCH", path, {"text": "Hi"})
        if operation == "deleteCannedResponse":
            target = await self.target_canned()
            return await m.call("DELETE", f"/api/v1/support/canned-responses/{target}")
        if operation == "listAgents":
            return await m.call("GET", "/api/v1/support/agents")
        if operation == "listRequests":
            return await m.call("GET", "/api/v1/requests")
        if operation == "changeRequest":
            return await m.call(
                "PATCH", "/api/v1/requests/CT-WARD1", {"status": "closed", "status_notes": "done"}
            )
        if operation == "revealPhone":
            return await m.call("POST", "/api/v1/requests/CT-WARD1/reveal-phone")
        raise AssertionError(f"no call written for {operation}: add it to this test")


async def _callers(house: StaffHouse) -> list[Caller]:
    callers = [Caller("anonymous", house.anonymous(), frozenset(), None, "anonymous")]
    for role in Role:
        member = await house.member(f"{role.value}@city.gov", [role.value])
        callers.append(Caller(role.value, member, frozenset({role}), None, "session"))
    for roles in (["agent"], ["admin"]):
        member = await house.member(f"ward1-{roles[0]}@city.gov", roles, wards=["1"])
        callers.append(Caller(f"{roles[0]}@ward1", member, parse_roles(roles), ["1"], "session"))
    token = await house.token_for("admin@city.gov", ["admin"])
    callers.append(Caller("admin token", token, frozenset({Role.ADMIN}), None, "token"))
    agent_token = await house.token_for("ward1-agent@city.gov", ["agent"])
    callers.append(
        Caller("agent@ward1 token", agent_token, frozenset({Role.AGENT}), ["1"], "token")
    )
    return callers


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_every_endpoint_for_every_caller(house: StaffHouse) -> None:
    assert {e.operation_id for e in ENDPOINTS} == set(EXPECTED), "an endpoint without a row here"
    await seed_request(house.sessions, "CT-WARD1", ward="1", phone="+27831234567")
    await seed_request(house.sessions, "CT-WARD2", ward="2", phone="+27829876543")
    world = World(house)
    wrong = []
    for caller in await _callers(house):
        for endpoint in ENDPOINTS:
            answer = await world.call(endpoint.operation_id, caller)
            want = expected_status(endpoint.operation_id, caller)
            if answer.status != want:
                wrong.append(
                    f"{endpoint.operation_id} as {caller.name}: {answer.status} not {want} {answer.body}"
                )
            if answer.status >= 400:
                assert set(answer.body) == {"error"} and answer.code, answer.body
    assert not wrong, "\n".join(wrong)


async def test_a_scoped_account_sees_nothing_of_another_ward(house: StaffHouse) -> None:
    await seed_request(house.sessions, "CT-WARD1", ward="1", phone="+27831234567")
    await seed_request(house.sessions, "CT-WARD2", ward="2", phone="+27829876543")
    scoped = await house.member("ward1@city.gov", ["agent"], wards=["1"])
    everyone = await house.member("agent@city.gov", ["agent"])
    listed = await scoped.call("GET", "/api/v1/requests")
    assert [r["reference"] for r in listed.body["items"]] == ["CT-WARD1"]
    assert "CT-WARD2" not in str(listed.body) and "9876543" not in str(listed.body)
    assert (await scoped.call("GET", "/api/v1/requests?ward=2")).body["items"] == []
    for call in (
        scoped.call("PATCH", "/api/v1/requests/CT-WARD2", {"status": "closed"}),
        scoped.call("POST", "/api/v1/requests/CT-WARD2/reveal-phone"),
    ):
        answer = await call
        assert (answer.status, answer.code) == (404, "not_found")
    every = await everyone.call("GET", "/api/v1/requests")
    assert [r["reference"] for r in every.body["items"]] == ["CT-WARD2", "CT-WARD1"]
