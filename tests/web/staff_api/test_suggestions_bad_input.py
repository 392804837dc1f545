"""Bad input to the suggested-incident endpoints (issue 19): each a clear 4xx in the API's error
shape, and nothing half-written: the suggestion still waits, no incident is declared, no
resident is queued a message, nothing is audited as a decision. The paths that work are in
tests/notifier/test_incident_suggestions.py."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from storage.models import (
    AuditLog,
    Incident,
    IncidentSuggestion,
    ResidentNotification,
)
from tests.web.staff_members import Member, StaffHouse, seed_suggestion

# The refusals are checked before any write; the two that read and lock rows run on both.
BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def _untouched(house: StaffHouse, suggestion_id: int) -> None:
    async with house.sessions() as session:
        row = await session.get(IncidentSuggestion, suggestion_id)
        assert row is not None
        assert (row.status, row.reason, row.incident_id, row.decided_at) == (
            "suggested",
            None,
            None,
            None,
        )
        for table in (Incident, ResidentNotification):
            assert await session.scalar(select(func.count()).select_from(table)) == 0
        decisions = await session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(
                AuditLog.action.in_(("incident_suggestion.confirm", "incident_suggestion.dismiss"))
            )
        )
        assert decisions == 0


@pytest.fixture
async def reviewer(house: StaffHouse) -> Member:
    return await house.member("supervisor@city.gov", ["supervisor"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "missing_field"),
        ({"reason": ""}, 400, "invalid_input"),
        ({"reason": "  \n "}, 400, "invalid_input"),
        ({"reason": 7}, 400, "invalid_field"),
        ({"reason": "x" * 501}, 400, "invalid_field"),
        ({"reason": "one event", "learn": False}, 400, "unknown_field"),
    ],
)
async def test_a_dismissal_without_a_good_reason_is_refused(
    house: StaffHouse, reviewer: Member, body: dict[str, Any], status: int, code: str
) -> None:
    target = await seed_suggestion(house.sessions)
    answer = await reviewer.call("POST", f"/api/v1/incident-suggestions/{target}/dismiss", body)
    assert (answer.status, answer.code) == (status, code), answer.body
    assert answer.body["error"]["message"]
    await _untouched(house, target)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"urgency": "panic"}, 400, "invalid_field"),
        ({"title": "x" * 121}, 400, "invalid_field"),
        ({"title": "   "}, 400, "invalid_input"),
        ({"wards": "1"}, 400, "invalid_field"),
        ({"wards": ["  "]}, 400, "invalid_input"),
        ({"text_af": "Geen water nie."}, 400, "invalid_input"),  # English stands in for the rest
        ({"text_en": "x" * 2000}, 400, "invalid_field"),
        ({"expected_end_at": "tomorrow"}, 400, "invalid_field"),
        ({"expected_end_at": "2001-01-01T00:00:00Z"}, 400, "invalid_input"),  # before it began
        ({"services": ["pothole"]}, 400, "unknown_field"),  # its service is the burst's
    ],
)
async def test_a_bad_confirmation_is_refused_and_declares_nothing(
    house: StaffHouse, reviewer: Member, body: dict[str, Any], status: int, code: str
) -> None:
    target = await seed_suggestion(house.sessions)
    answer = await reviewer.call("POST", f"/api/v1/incident-suggestions/{target}/confirm", body)
    assert (answer.status, answer.code) == (status, code), answer.body
    assert answer.body["error"]["message"]
    await _untouched(house, target)


@BOTH
async def test_a_ward_scoped_reviewer_cannot_confirm_into_other_wards(house: StaffHouse) -> None:
    target = await seed_suggestion(house.sessions, ward="1")
    scoped = await house.member("supervisor1@city.gov", ["supervisor"], wards=["1"])
    answer = await scoped.call(
        "POST", f"/api/v1/incident-suggestions/{target}/confirm", {"wards": ["1", "2"]}
    )
    assert (answer.status, answer.code) == (403, "forbidden")
    await _untouched(house, target)
    # Another ward's suggestion is not there at all for them, whatever they send.
    elsewhere = await seed_suggestion(house.sessions, ward="2")
    for path, body in (("confirm", {}), ("dismiss", {"reason": "not ours"})):
        answer = await scoped.call("POST", f"/api/v1/incident-suggestions/{elsewhere}/{path}", body)
        assert (answer.status, answer.code) == (404, "not_found")
    await _untouched(house, elsewhere)


@BOTH
async def test_unknown_suggestions_and_bad_queries_answer_in_the_api_shape(
    house: StaffHouse, reviewer: Member
) -> None:
    for path in ("999999", "abc", "1.5", "-1"):
        answer = await reviewer.call("GET", f"/api/v1/incident-suggestions/{path}")
        assert (answer.status, answer.code) == (404, "not_found"), path
        answer = await reviewer.call(
            "POST", f"/api/v1/incident-suggestions/{path}/dismiss", {"reason": "gone"}
        )
        assert (answer.status, answer.code) == (404, "not_found"), path
    for query in ("status=open", "status=", "limit=0", "colour=red"):
        answer = await reviewer.call("GET", f"/api/v1/incident-suggestions?{query}")
        assert answer.status == 400 and answer.code, (query, answer.body)
    analyst = await house.member("analyst@city.gov", ["analyst"])
    for weeks in ("0", "105", "twelve"):
        answer = await analyst.call("GET", f"/api/v1/incident-suggestions/precision?weeks={weeks}")
        assert (answer.status, answer.code) == (400, "invalid_field"), weeks
