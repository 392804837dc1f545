"""Residents' rights through the admin API: an admin finds a resident by phone number, exports
what citybot holds and erases it (the conversation forgotten too), each step audited without the
number itself; and a failure below /api/v1 answers in the API's error shape, never a traceback."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from channels.types import InboundMessage
from conversations.keys import ConversationKey
from storage.models import AuditLog, ResidentAddress
from tests.web.staff_members import StaffHouse

PHONE = "+27831234567"


async def _talk(house: StaffHouse, *texts: str) -> None:
    for n, text in enumerate(texts):
        await house.services.turn_loop.handle(
            InboundMessage("sms", PHONE, f"rights-{n}-{text}", text=text)
        )
    await house.services.turn_loop.flush()


async def _actions(house: StaffHouse) -> list[AuditLog]:
    async with house.sessions() as session:
        return list((await session.scalars(select(AuditLog).order_by(AuditLog.id))).all())


async def test_an_admin_finds_exports_and_erases_a_resident(house: StaffHouse) -> None:
    await _talk(house, "hello", "MENU")
    admin = await house.member("admin@city.gov", ["admin"])
    found = await admin.call("GET", f"/api/v1/residents?address={PHONE.replace('+', '%2B')}")
    assert found.status == 200, found.body
    (resident,) = found.body["items"]
    assert resident["channels"] == ["sms"] and resident["erased_at"] is None
    resident_id = resident["id"]

    exported = await admin.call("GET", f"/api/v1/residents/{resident_id}/export")
    assert exported.status == 200
    assert exported.body["addresses"][0]["address"] == PHONE
    assert [m["text"] for m in exported.body["messages"] if m["direction"] == "in"][:1] == ["hello"]
    key = ConversationKey("sms", PHONE)
    assert await house.services.turn_loop.states.get(key) is not None

    erased = await admin.call(
        "POST", f"/api/v1/residents/{resident_id}/erase", {"reason": "POPIA request 2026/118"}
    )
    assert erased.status == 200, erased.body
    assert erased.body["addresses"] == 1 and erased.body["messages"] >= 2
    assert await house.services.turn_loop.states.get(key) is None
    async with house.sessions() as session:
        assert await session.scalar(select(ResidentAddress)) is None
    after = await admin.call("GET", f"/api/v1/residents/{resident_id}/export")
    assert after.body["addresses"] == [] and after.body["resident"]["erased_at"]
    again = await admin.call("GET", f"/api/v1/residents?address={PHONE.replace('+', '%2B')}")
    assert again.body["items"] == []

    rows = await _actions(house)
    staff_rows = [r for r in rows if r.action.startswith("resident.")]
    assert [r.action for r in staff_rows] == [
        "resident.lookup",
        "resident.export",
        "resident.erase",
        "resident.export",
        "resident.lookup",
    ]
    lookup = staff_rows[0]
    assert lookup.details == {
        "address_sha256": hashlib.sha256(PHONE.encode()).hexdigest()[:16],
        "found": [resident_id],
    }
    assert staff_rows[2].details is not None
    assert staff_rows[2].details["reason"] == "POPIA request 2026/118"
    assert all(PHONE not in str(r.details) for r in rows)
    assert all(r.actor == f"staff:{admin.account_id}" for r in staff_rows)


async def test_a_whatsapp_resident_is_found_by_the_bare_number(house: StaffHouse) -> None:
    await house.services.turn_loop.handle(
        InboundMessage("whatsapp", f"whatsapp:{PHONE}", "wa-1", text="hello")
    )
    admin = await house.member("admin@city.gov", ["admin"])
    found = await admin.call("GET", f"/api/v1/residents?address={PHONE.replace('+', '%2B')}")
    assert [r["channels"] for r in found.body["items"]] == [["whatsapp"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/api/v1/residents", None, 400, "missing_field"),
        ("GET", "/api/v1/residents?address=", None, 400, "invalid_input"),
        ("GET", "/api/v1/residents/999/export", None, 404, "not_found"),
        ("GET", "/api/v1/residents/abc/export", None, 404, "not_found"),
        ("POST", "/api/v1/residents/999/erase", {"reason": "x"}, 404, "not_found"),
        ("POST", "/api/v1/residents/1/erase", {}, 400, "missing_field"),
        ("POST", "/api/v1/residents/1/erase", {"reason": "x" * 501}, 400, "invalid_field"),
        ("POST", "/api/v1/residents/1/erase", {"reason": "x", "all": True}, 400, "unknown_field"),
    ],
)
async def test_bad_requests_get_a_clear_answer(
    house: StaffHouse,
    method: str,
    path: str,
    body: dict[str, object] | None,
    status: int,
    code: str,
) -> None:
    admin = await house.member("admin@city.gov", ["admin"])
    answer = await admin.call(method, path, body)
    assert (answer.status, answer.code) == (status, code), answer.body


async def test_an_unexpected_failure_answers_in_the_apis_shape(
    house: StaffHouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await house.member("admin@city.gov", ["admin"])

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug with a secret in it: hunter2")

    monkeypatch.setattr("staff.residents.resident_record", broken)
    answer = await admin.call("GET", "/api/v1/residents/1/export")
    assert answer.status == 500
    assert answer.body == {
        "error": {
            "code": "internal_error",
            "message": "Something went wrong on our side; try again shortly.",
        }
    }
