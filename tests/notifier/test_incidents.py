"""Known incidents through the admin API: declared by staff or another city system, changed and
ended, and each time the area's subscribers are told, in their language, by the broadcasts
worker (the conversation's side: tests/conversations/test_known_incidents.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from storage.models import AuditLog, Broadcast
from storage.types import utc_now
from tests.e2e.city import City
from tests.notifier.test_broadcasts import BOTH, _sms_to, city, official, resident

__all__ = ["city"]

DECLARED = "No water in ward 9: a burst main. Expected back by 18:00."


async def _declare(author: object, **body: object) -> dict[str, object]:
    status, created = await author.call(  # type: ignore[attr-defined]
        "POST",
        "/api/v1/incidents",
        {
            "title": "Burst main in Khayelitsha",
            "services": ["no_water", "water_leak"],
            "wards": ["9"],
            "text_en": DECLARED,
            **body,
        },
    )
    assert status == 201, created
    return dict(created)


@BOTH
async def test_subscribers_are_told_when_it_starts_changes_and_ends(city: City) -> None:
    await resident(city, "sms", "+27820000001")
    await resident(city, "sms", "+27820000002", locale="af")
    await resident(city, "sms", "+27820000003", ward="10")
    system = await official(city, "scada@city.gov", ["broadcaster"])
    incident = await _declare(system)
    assert (incident["status"], incident["topic"]) == ("open", "water")
    sender = city.services.broadcasts
    await sender.run_until_idle()
    assert _sms_to(city) == {"+27820000001": DECLARED, "+27820000002": DECLARED}

    later = (utc_now() + timedelta(hours=5)).replace(microsecond=0)
    status, changed = await system.call(
        "PATCH", f"/api/v1/incidents/{incident['id']}", {"expected_end_at": later.isoformat()}
    )
    assert status == 200, changed
    await sender.run_until_idle()
    bodies = [r.form["Body"] for r in city.twilio.messages()]  # type: ignore[union-attr]
    end = f"{later:%Y-%m-%d %H:%M}"
    assert f"Update on Burst main in Khayelitsha: now expected to be fixed by {end}." in bodies
    assert (
        f"Nuus oor Burst main in Khayelitsha: dit behoort nou teen {end} herstel te wees." in bodies
    )

    status, ended = await system.call(
        "PATCH", f"/api/v1/incidents/{incident['id']}", {"status": "resolved"}
    )
    assert ended["status"] == "resolved" and ended["ended_at"]
    await sender.run_until_idle()
    bodies = [r.form["Body"] for r in city.twilio.messages()]  # type: ignore[union-attr]
    assert "Resolved: Burst main in Khayelitsha. Thank you for your patience." in bodies
    assert len(bodies) == 6 and "+27820000003" not in {
        r.form["To"]
        for r in city.twilio.messages()  # type: ignore[union-attr]
    }
    status, again = await system.call(
        "PATCH", f"/api/v1/incidents/{incident['id']}", {"status": "open"}
    )
    assert (status, again["error"]["code"]) == (400, "invalid_input")
    async with city.services.session_factory() as session:
        actions = (
            await session.scalars(
                select(AuditLog.action).where(AuditLog.subject == f"incident:{incident['id']}")
            )
        ).all()
        told = (
            await session.scalars(
                select(Broadcast.state).where(Broadcast.incident_id == incident["id"])
            )
        ).all()
    assert list(actions) == ["incident.declare", "incident.change", "incident.change"]
    assert list(told) == ["sent", "sent", "sent"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"services": ["fireworks"]}, 400, "invalid_input"),
        ({"services": []}, 400, "invalid_input"),
        ({"wards": []}, 400, "invalid_input"),
        ({"wards": ["10"]}, 403, "forbidden"),
        ({"text_en": " "}, 400, "invalid_input"),
        ({"urgency": "whenever"}, 400, "invalid_field"),
    ],
)
async def test_bad_declarations_are_refused(
    city: City, body: dict[str, object], status: int, code: str
) -> None:
    scoped = await official(city, "ward9@city.gov", ["broadcaster"], wards=["9"])
    answer_status, answer = await scoped.call(
        "POST",
        "/api/v1/incidents",
        {"title": "t", "services": ["no_water"], "wards": ["9"], "text_en": DECLARED, **body},
    )
    assert (answer_status, answer["error"]["code"]) == (status, code), answer
    async with city.services.session_factory() as session:
        assert (await session.scalars(select(Broadcast))).all() == []
