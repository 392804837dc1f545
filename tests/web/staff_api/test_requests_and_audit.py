"""Service requests, the audit log and accounts through the admin API: masked lists, filters,
paging, status changes written to the built-in Open311 server, the deliberate reveal, and
every action in the audit log with actor, address and target."""

from __future__ import annotations

import pytest
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


async def _post_direct(house: StaffHouse, phone: str | None = "+27825550000") -> int:
    """A request another client posted straight to the built-in GeoReport server."""
    async with house.sessions() as session, session.begin():
        row = Open311Request(
            token="direct-1",
            service_code="streetlight",
            service_name="Street light",
            description="Out",
            phone=phone,
            address_string="12 Long Street",
        )
        session.add(row)
        await session.flush()
        return row.id


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_requests_posted_straight_to_georeport_are_listed_changed_and_revealed(
    house: StaffHouse,
) -> None:
    await seed_request(house.sessions, "CT-AAA1", ward="1", phone="+27831234567")
    direct = await _post_direct(house)
    admin_agent = await house.member("agent@city.gov", ["agent"])
    ours = await admin_agent.call("GET", "/api/v1/requests")
    assert [r["reference"] for r in ours.body["items"]] == ["CT-AAA1"]
    listed = await admin_agent.call("GET", "/api/v1/requests?source=open311")
    (item,) = listed.body["items"]
    assert item["reference"] == f"GR-{direct}" and item["service_request_id"] == str(direct)
    assert item["phones_masked"] == ["********0000"] and "5550000" not in str(listed.body)
    changed = await admin_agent.call(
        "PATCH", f"/api/v1/requests/gr-{direct}", {"status": "closed", "status_notes": "Fixed"}
    )
    assert changed.status == 200 and changed.body["status"] == "closed"
    assert (await _last(house, "request.update")).subject == f"request:GR-{direct}"
    shown = await admin_agent.call("POST", f"/api/v1/requests/GR-{direct}/reveal-phone")
    assert shown.body["phones"] == ["+27825550000"]
    revealed = await _last(house, "resident.view_personal")
    assert revealed.details == {"request": f"GR-{direct}", "what": "phone", "found": 1}
    closed = await admin_agent.call("GET", "/api/v1/requests?source=open311&status=open")
    assert closed.body["items"] == []


async def test_a_ward_scoped_account_sees_no_direct_requests(house: StaffHouse) -> None:
    direct = await _post_direct(house)
    scoped = await house.member("ward1@city.gov", ["agent"], wards=["1"])
    listed = await scoped.call("GET", "/api/v1/requests?source=open311")
    assert listed.body["items"] == []
    refused = await scoped.call("PATCH", f"/api/v1/requests/GR-{direct}", {"status": "closed"})
    assert refused.status == 404
    # A citybot report's built-in row is changed under its CT- reference, not as GR-.
    await seed_request(house.sessions, "CT-AAA1", ward="1")
    agent = await house.member("agent@city.gov", ["agent"])
    async with house.sessions() as session:
        from sqlalchemy import func

        filed_id = await session.scalar(
            select(func.max(Open311Request.id)).where(Open311Request.token == "ct-aaa1")
        )
    as_direct = await agent.call("PATCH", f"/api/v1/requests/GR-{filed_id}", {"status": "closed"})
    assert as_direct.status == 404
