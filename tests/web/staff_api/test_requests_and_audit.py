"""Service requests, the audit log and accounts through the admin API: masked lists, filters,
paging, status changes written to the built-in Open311 server, the deliberate reveal, and
every action in the audit log with actor, address and target."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import AuditLog, Open311Request
from tests.web.staff_members import StaffHouse, seed_request


async def _last(house: StaffHouse, action: str) -> AuditLog:
    async with house.sessions() as session:
        row = await session.scalar(
            select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id.desc())
        )
    assert row is not None, f"no {action} in the audit log"
    return row


async def test_requests_are_listed_masked_filtered_and_paged(house: StaffHouse) -> None:
    await seed_request(house.sessions, "CT-AAA1", ward="1", phone="+27831234567")
    await seed_request(house.sessions, "CT-AAA2", ward="1", area_type="informal")
    await seed_request(
        house.sessions, "CT-AAA3", ward="2", phone="whatsapp:+27829876543", channel="whatsapp"
    )
    analyst = await house.member("analyst@city.gov", ["analyst"])
    everything = await analyst.call("GET", "/api/v1/requests")
    assert [r["reference"] for r in everything.body["items"]] == ["CT-AAA3", "CT-AAA2", "CT-AAA1"]
    text = str(everything.body)
    assert "1234567" not in text and "9876543" not in text
    first = everything.body["items"][2]
    assert first["phones_masked"] == ["********4567"]
    assert first["status"] == "open" and first["ward"] == "1"
    informal = await analyst.call("GET", "/api/v1/requests?area_type=informal")
    assert [r["reference"] for r in informal.body["items"]] == ["CT-AAA2"]
    ward1 = await analyst.call("GET", "/api/v1/requests?ward=1&limit=1")
    assert [r["reference"] for r in ward1.body["items"]] == ["CT-AAA2"]
    cursor = ward1.body["next_cursor"]
    rest = await analyst.call("GET", f"/api/v1/requests?ward=1&limit=1&cursor={cursor}")
    assert [r["reference"] for r in rest.body["items"]] == ["CT-AAA1"]
    assert rest.body["next_cursor"] is None
    closed = await analyst.call("GET", "/api/v1/requests?status=closed")
    assert closed.body["items"] == []


async def test_a_status_change_is_written_to_the_open311_row_and_audited(house: StaffHouse) -> None:
    await seed_request(house.sessions, "CT-AAA1", ward="1")
    agent = await house.member("agent@city.gov", ["agent"])
    answer = await agent.call(
        "PATCH", "/api/v1/requests/ct-aaa1", {"status": "closed", "status_notes": "Filled in."}
    )
    assert answer.status == 200
    assert (answer.body["status"], answer.body["status_notes"]) == ("closed", "Filled in.")
    async with house.sessions() as session:
        row = await session.scalar(select(Open311Request))
    assert row is not None and (row.status, row.status_notes) == ("closed", "Filled in.")
    entry = await _last(house, "request.update")
    assert entry.actor == f"staff:{agent.account_id}"
    assert entry.subject == "request:CT-AAA1" and entry.address == "127.0.0.1"
    assert entry.details["status"] == {"from": "open", "to": "closed"}


async def test_a_request_not_on_the_builtin_server_cannot_be_changed_here(
    house: StaffHouse,
) -> None:
    await seed_request(house.sessions, "CT-AAA1", ward="1", filed=False)
    agent = await house.member("agent@city.gov", ["agent"])
    answer = await agent.call("PATCH", "/api/v1/requests/CT-AAA1", {"status": "closed"})
    assert (answer.status, answer.code) == (409, "conflict")


async def test_revealing_a_phone_number_is_deliberate_and_audited(house: StaffHouse) -> None:
    await seed_request(house.sessions, "CT-AAA1", ward="1", phone="+27831234567")
    agent = await house.member("agent@city.gov", ["agent"])
    assert (await agent.call("GET", "/api/v1/requests/CT-AAA1/reveal-phone")).status == 405
    answer = await agent.call("POST", "/api/v1/requests/CT-AAA1/reveal-phone")
    assert answer.body == {"reference": "CT-AAA1", "phones": ["+27831234567"]}
    entry = await _last(house, "resident.view_personal")
    assert entry.actor == f"staff:{agent.account_id}" and entry.address == "127.0.0.1"
    assert entry.subject is not None and entry.subject.startswith("resident:")
    assert entry.details["request"] == "CT-AAA1"


async def test_accounts_tokens_and_the_audit_log_through_the_api(house: StaffHouse) -> None:
    admin = await house.member("admin@city.gov", ["admin"])
    created = await admin.call(
        "POST",
        "/api/v1/accounts",
        {"email": "Bongani@City.gov", "roles": ["broadcaster"], "wards": ["115"], "name": "B"},
    )
    assert created.status == 201
    assert created.body["password"] and created.body["totp_uri"].startswith("otpauth://")
    account = created.body["account"]
    assert (account["email"], account["wards"]) == ("bongani@city.gov", ["115"])
    changed = await admin.call(
        "PATCH", f"/api/v1/accounts/{account['id']}", {"roles": ["approver"], "wards": None}
    )
    assert (changed.body["roles"], changed.body["wards"]) == (["approver"], None)
    issued = await admin.call(
        "POST", "/api/v1/tokens", {"account_id": account["id"], "roles": ["approver"], "days": 7}
    )
    assert issued.status == 201 and issued.body["token"].startswith("cbt_")
    listed = await admin.call("GET", "/api/v1/tokens")
    assert "token" not in listed.body["items"][0]
    assert listed.body["items"][0]["prefix"] == issued.body["token"][:12]
    revoked = await admin.call("DELETE", f"/api/v1/tokens/{issued.body['id']}")
    assert revoked.body["revoked_at"] is not None

    mine = await admin.call("GET", f"/api/v1/audit?actor=staff:{admin.account_id}")
    actions = [e["action"] for e in mine.body["items"]]
    assert actions[:4] == ["token.revoke", "token.issue", "account.change", "account.create"]
    assert all(e["address"] == "127.0.0.1" for e in mine.body["items"][:4])
    assert mine.body["items"][3]["target"] == f"staff:{account['id']}"
    family = await admin.call("GET", "/api/v1/audit?action=token.")
    assert {e["action"] for e in family.body["items"]} == {"token.revoke", "token.issue"}
    later = await admin.call("GET", "/api/v1/audit?from=2999-01-01T00:00:00Z")
    assert later.body["items"] == []
    verified = await admin.call("POST", "/api/v1/audit/verify")
    assert verified.status == 200 and verified.body["intact"] is True
    assert verified.body["rows"] >= 6
