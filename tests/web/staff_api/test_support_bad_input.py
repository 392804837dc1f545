"""Bad input to the support endpoints: each a clear 4xx in the API's error shape, never a 5xx,
and nothing half-written (no transcript line, no audit row, nothing queued for the resident).
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from storage.models import AuditLog, ResidentNotification, SupportMessage
from tests.web.staff_members import StaffHouse, seed_ticket

T = "/api/v1/support/tickets"


async def _counts(house: StaffHouse) -> tuple[int, int, int]:
    async with house.sessions() as session:
        return (
            int(await session.scalar(select(func.count()).select_from(SupportMessage)) or 0),
            int(
                await session.scalar(select(func.count()).where(AuditLog.action.like("support.%")))
                or 0
            ),
            int(await session.scalar(select(func.count()).select_from(ResidentNotification)) or 0),
        )


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_bad_support_calls_are_clear_4xx_and_write_nothing(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    other = await house.member("other@city.gov", ["agent"])
    analyst = await house.member("analyst@city.gov", ["analyst"])
    supervisor = await house.member("boss@city.gov", ["supervisor"])
    ticket = await seed_ticket(house.sessions, ward=None, locale="zu")
    closed = await seed_ticket(house.sessions, ward=None, locale="zu", state="closed")
    assert (await agent.call("POST", f"{T}/{ticket}/claim")).status == 200
    before = await _counts(house)

    refused: list[tuple[Any, str, str, Any, int]] = [
        (agent, "POST", f"{T}/{ticket}/messages", {"text": "   "}, 400),
        (agent, "POST", f"{T}/{ticket}/messages", {"text": "x" * 1601}, 400),
        (agent, "POST", f"{T}/{ticket}/messages", {"text": 7}, 400),
        (agent, "POST", f"{T}/{ticket}/messages", {}, 400),
        (other, "POST", f"{T}/{ticket}/messages", {"text": "hello"}, 409),
        (agent, "POST", f"{T}/{ticket}/notes", {"text": ""}, 400),
        (agent, "POST", f"{T}/{ticket}/handback", {"outcome": "vanished"}, 400),
        (other, "POST", f"{T}/{ticket}/handback", {"outcome": "resolved"}, 409),
        (agent, "POST", f"{T}/{closed}/handback", {"outcome": "resolved"}, 409),
        (agent, "POST", f"{T}/{closed}/claim", None, 409),
        (agent, "POST", f"{T}/{ticket}/transfer", {}, 400),
        (agent, "POST", f"{T}/{ticket}/transfer", {"team": "<script>"}, 400),
        (agent, "POST", f"{T}/{ticket}/transfer", {"account_id": 999999}, 400),
        (supervisor, "POST", f"{T}/{ticket}/assign", {"account_id": 999999}, 400),
        (supervisor, "POST", f"{T}/{ticket}/assign", {"account_id": "me"}, 400),
        (supervisor, "POST", f"{T}/{ticket}/assign", {}, 400),
        (supervisor, "POST", f"{T}/{closed}/assign", {"account_id": None}, 409),
        (agent, "POST", f"{T}/999999/claim", None, 404),
        (agent, "GET", f"{T}/not-a-number", None, 404),
        (analyst, "POST", f"{T}/{ticket}/messages", {"text": "hello"}, 403),
        (agent, "POST", f"{T}/{ticket}/assign", {"account_id": None}, 403),
        (agent, "POST", "/api/v1/support/sms-count", {"text": None}, 400),
    ]
    for member, method, path, body, status in refused:
        answer = await member.call(method, path, body)
        assert answer.status == status, (path, body, answer.body)
        assert set(answer.body["error"]) >= {"code", "message"}, answer.body
    assert await _counts(house) == before, "nothing half-written"
