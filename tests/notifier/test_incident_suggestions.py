"""Early warning end to end on SQLite and PostgreSQL: reports stored by a running citybot are
read by the ``early_warning`` worker's cycle, a burst of "no water" in ward 9 becomes one
suggested incident with the reports behind it, staff confirm it through the admin API (the
area's subscribers are told, the residents behind the reports are told once each in their
language, over the fake Twilio) or dismiss another with a reason, and /metrics counts it all.
The detector's statistics: tests/notifier/test_burst_detector.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from forms_runtime.i18n import tr
from notifier.incident_suggestions import _KNOWN, EarlyWarning
from storage.models import (
    AuditLog,
    BurstCounter,
    Incident,
    IncidentSuggestion,
    ResidentNotification,
    Submission,
)
from storage.types import utc_now
from tests.e2e.city import City, SmsResident, choose
from tests.notifier.test_broadcasts import BOTH, city, official, resident

__all__ = ["city"]


async def _report(
    city: City,
    number: int,
    at: datetime,
    *,
    ward: str,
    resident_id: int | None = None,
    service: str = "no_water",
) -> None:
    async with city.services.session_factory() as session, session.begin():
        session.add(
            Submission(
                reference=f"CT-T{number:05d}",
                resident_id=resident_id,
                channel="sms" if resident_id else None,
                form_id=service,
                form_version=1,
                service_code="WATER",
                locale="en",
                answers={},
                ward=ward,
                wards=[ward],
                suburb=f"Suburb {ward}",
                area_type="formal",
                precision="suburb",
                place_source="place",
                created_at=at,
                updated_at=at,
            )
        )


async def _history(city: City, now: datetime) -> int:
    """Two weeks of one "no water" report a day in each of wards 9, 10 and 11."""
    number = 1
    for day in range(14, 0, -1):
        for ward in ("9", "10", "11"):
            await _report(city, number, now - timedelta(days=day, hours=int(ward) - 8), ward=ward)
            number += 1
    return number


async def _read_all(warning: EarlyWarning) -> int:
    read = 0
    while handled := await warning.run_once():
        read += handled
    return read


@BOTH
async def test_a_burst_is_suggested_confirmed_and_its_residents_told_once(city: City) -> None:
    warning = city.services.early_warning
    assert warning is not None
    now = utc_now()
    # Older than the eight weeks of history the first cycle reads: never read.
    await _report(city, 0, now - timedelta(weeks=9), ward="9")
    number = await _history(city, now)
    locales = ["en", "af", "zu", "xh", "en"]
    residents = [
        await resident(city, "sms", f"+2782000010{i}", locale=locale)
        for i, locale in enumerate(locales)
    ]
    # A subscriber of ward 9 who reported nothing: told by the incident's broadcast only.
    await resident(city, "sms", "+27820000199", locale="en")
    # Six reports in twenty minutes from five residents (the first reports twice).
    for i, who in enumerate([*residents, residents[0]]):
        at = now - timedelta(minutes=20) + timedelta(minutes=3 * i)
        await _report(city, number + i, at, ward="9", resident_id=who)
    # Read in batches of seven by a new worker each time (a restart between every cycle): the
    # state and counters stored after each batch carry everything over.
    read = 0
    while handled := await EarlyWarning(
        city.services.session_factory, warning.gazetteer, warning.settings, batch_size=7
    ).run_once():
        read += handled
    assert read == 42 + 6

    async with city.services.session_factory() as session:
        found = (await session.scalars(select(IncidentSuggestion))).all()
        counters = await session.scalar(select(func.count()).select_from(BurstCounter))
    assert len(found) == 1 and counters
    suggestion = found[0]
    assert (suggestion.service, suggestion.area, suggestion.wards) == ("no_water", "ward:9", ["9"])
    assert suggestion.status == "suggested" and suggestion.report_count >= 3
    assert suggestion.expected < 0.5 and suggestion.window_count >= 3

    # Nothing is read or suggested twice.
    assert await warning.run_once() == 0

    reviewer = await official(city, "supervisor9@city.gov", ["supervisor"], wards=["9"])
    elsewhere = await official(city, "supervisor4@city.gov", ["supervisor"], wards=["4"])
    agent = await official(city, "agent@city.gov", ["agent"])
    status, listed = await reviewer.call("GET", "/api/v1/incident-suggestions?status=suggested")
    assert status == 200 and [s["id"] for s in listed["items"]] == [suggestion.id]
    assert (await elsewhere.call("GET", "/api/v1/incident-suggestions"))[1]["items"] == []
    path = f"/api/v1/incident-suggestions/{suggestion.id}"
    assert (await elsewhere.call("GET", path))[0] == 404
    assert (await agent.call("GET", path))[0] == 403
    status, shown = await reviewer.call("GET", path)
    assert status == 200 and shown["area_name"] == "ward 9"
    assert len(shown["reports"]) == shown["report_count"] >= 3
    assert {r["ward"] for r in shown["reports"]} == {"9"}
    # Where and when only: no resident, no answers, no phone number in what staff read.
    assert "resident" not in str(shown) and "+2782" not in str(shown)

    status, confirmed = await reviewer.call("POST", f"{path}/confirm", {})
    assert status == 200, confirmed
    assert confirmed["status"] == "confirmed" and confirmed["incident_id"]
    behind = {r["reference"] for r in shown["reports"]}
    async with city.services.session_factory() as session:
        incident = await session.get(Incident, confirmed["incident_id"])
        assert incident is not None
        assert (incident.services, incident.wards, incident.status) == (["no_water"], ["9"], "open")
        told = (
            await session.scalars(
                select(ResidentNotification).where(ResidentNotification.purpose == "incident_known")
            )
        ).all()
        audit = await session.scalar(
            select(AuditLog).where(AuditLog.action == "incident_suggestion.confirm")
        )
    # Once per resident behind the reports (the one who reported twice is told once).
    reporters = {r.resident_id for r in told}
    told_by_resident = {r.resident_id: r.reference for r in told}
    assert len(told) == len(reporters) == confirmed["residents_told"]
    assert reporters <= set(residents) and {r.reference for r in told} <= behind
    assert audit is not None and audit.subject == f"incident_suggestion:{suggestion.id}"

    while await city.services.dispatcher.run_once():
        pass
    assert city.twilio is not None
    sent = {r.form["To"]: r.form["Body"] for r in city.twilio.messages()}
    phone = {who: f"+2782000010{i}" for i, who in enumerate(residents)}
    for row in told:
        assert sent[phone[row.resident_id]] == tr(row.locale, _KNOWN, reference=row.reference)
        assert row.locale == locales[residents.index(row.resident_id)]
    # In their language: the isiZulu reporter is not written to in English.
    assert "idolobha" in sent[phone[residents[2]]]

    # Everything a declaration does: the area's subscribers are told by the broadcasts worker.
    await city.services.broadcasts.run_until_idle()
    bodies = [r.form["Body"] for r in city.twilio.messages() if r.form["To"] == "+27820000199"]
    assert any(
        body.startswith("The city knows about No water supply reports in ward 9") for body in bodies
    ), bodies

    # Everything a declaration does: later reporters hear it is known. The subscriber, who
    # reported nothing, now starts a "no water" report and is told before the form opens.
    later = SmsResident(city, "+27820000199")
    await later.say(("text", "menu", 0))
    await later.say(choose(later.last_question(), later.rng, "no_water"))
    said = later.received()[-1]
    assert said.startswith("The city knows about No water supply reports in ward 9"), said
    assert "The city already knows about this" in said

    # Reports the worker reads after the confirmation join it: one made before it (an
    # Afrikaans speaker's) is told like the others; the twice-reporting resident is not told
    # again; one made after it is not written to (its resident meets the known incident when
    # starting a report).
    latecomer = await resident(city, "sms", "+27820000120", locale="af")
    afterwards = await resident(city, "sms", "+27820000121", locale="en")
    late = number + 6
    await _report(city, late, now - timedelta(minutes=2), ward="9", resident_id=latecomer)
    await _report(city, late + 1, now - timedelta(minutes=1), ward="9", resident_id=residents[0])
    await _report(city, late + 2, now + timedelta(minutes=1), ward="9", resident_id=afterwards)

    # Five minutes on, so the report made after the confirmation is read (and its messages due).
    def ahead_clock() -> datetime:
        return utc_now() + timedelta(minutes=5)

    ahead = EarlyWarning(
        city.services.session_factory, warning.gazetteer, warning.settings, clock=ahead_clock
    )
    assert await _read_all(ahead) == 3
    async with city.services.session_factory() as session:
        grown = await session.get(IncidentSuggestion, suggestion.id)
        told_late = (
            await session.scalars(
                select(ResidentNotification)
                .where(
                    ResidentNotification.purpose == "incident_known",
                    ResidentNotification.resident_id.in_([latecomer, residents[0], afterwards]),
                )
                .order_by(ResidentNotification.id)
            )
        ).all()
    assert grown is not None and grown.report_count == len(behind) + 3
    assert [(r.resident_id, r.reference, r.locale) for r in told_late] == [
        (residents[0], told_by_resident[residents[0]], "en"),
        (latecomer, f"CT-T{late:05d}", "af"),
    ]
    city.services.dispatcher.clock = ahead_clock
    while await city.services.dispatcher.run_once():
        pass
    sent = {r.form["To"]: r.form["Body"] for r in city.twilio.messages()}
    assert sent["+27820000120"] == tr("af", _KNOWN, reference=f"CT-T{late:05d}")
    assert "+27820000121" not in sent

    # Decided once: a second decision is refused.
    assert (await reviewer.call("POST", f"{path}/confirm", {}))[0] == 400
    assert (await reviewer.call("POST", f"{path}/dismiss", {"reason": "late"}))[0] == 400

    _, metrics = await _metrics(city)
    assert 'citybot_incident_suggestions_total{outcome="confirmed"} 1.0' in metrics


@BOTH
async def test_a_dismissal_needs_a_reason_is_audited_and_teaches_nothing(city: City) -> None:
    warning = city.services.early_warning
    assert warning is not None
    now = utc_now()
    number = await _history(city, now)
    for i in range(6):
        at = now - timedelta(minutes=20) + timedelta(minutes=3 * i)
        await _report(city, number + i, at, ward="10", resident_id=None)
    await _read_all(warning)
    async with city.services.session_factory() as session:
        suggestion = await session.scalar(select(IncidentSuggestion))
        counters_before = {
            c.key: c.state for c in (await session.scalars(select(BurstCounter))).all()
        }
    assert suggestion is not None
    broadcaster = await official(city, "broadcaster@city.gov", ["broadcaster"])
    path = f"/api/v1/incident-suggestions/{suggestion.id}/dismiss"
    status, refused = await broadcaster.call("POST", path, {"reason": "   "})
    assert status == 400 and "why" in refused["error"]["message"]
    assert (await broadcaster.call("POST", path, {}))[0] == 400
    status, dismissed = await broadcaster.call(
        "POST", path, {"reason": "a school's pupils reporting one dry tap"}
    )
    assert status == 200 and dismissed["status"] == "dismissed"
    async with city.services.session_factory() as session:
        audit = await session.scalar(
            select(AuditLog).where(AuditLog.action == "incident_suggestion.dismiss")
        )
        counters_after = {
            c.key: c.state for c in (await session.scalars(select(BurstCounter))).all()
        }
        incidents = await session.scalar(select(func.count()).select_from(Incident))
    assert audit is not None and audit.details["reason"].startswith("a school's")
    assert counters_after == counters_before and incidents == 0

    analyst = await official(city, "analyst@city.gov", ["analyst"])
    status, precision = await analyst.call("GET", "/api/v1/incident-suggestions/precision?weeks=2")
    assert status == 200
    this_week = precision["weeks"][-1]
    assert (this_week["suggested"], this_week["dismissed"], this_week["precision"]) == (1, 1, 0.0)
    _, metrics = await _metrics(city)
    assert 'citybot_incident_suggestions_total{outcome="suggested"} 1.0' in metrics
    assert 'citybot_incident_suggestions_total{outcome="dismissed"} 1.0' in metrics

    # Two hours on, a real outage of the same service in the same ward, within the dismissed
    # burst's hold: a new suggestion staff see, not reports quietly added to the dismissed one.
    later = now + timedelta(hours=2)
    for i in range(6):
        at = later - timedelta(minutes=20) + timedelta(minutes=3 * i)
        await _report(city, number + 6 + i, at, ward="10", resident_id=None)
    await _read_all(
        EarlyWarning(
            city.services.session_factory,
            warning.gazetteer,
            warning.settings,
            clock=lambda: later + timedelta(minutes=1),
        )
    )
    async with city.services.session_factory() as session:
        found = (
            await session.scalars(select(IncidentSuggestion).order_by(IncidentSuggestion.id))
        ).all()
    assert [(s.status, s.report_count, s.area) for s in found] == [
        ("dismissed", suggestion.report_count, "ward:10"),
        ("suggested", 6, "ward:10"),
    ]


async def _metrics(city: City) -> tuple[int, str]:
    async with city.http.get(city.url + "/metrics") as response:
        return response.status, await response.text()


async def test_a_cycle_that_does_not_commit_counts_no_suggestion(city: City) -> None:
    """/metrics counts what was stored: a cycle that fails before its commit (here the
    database refuses the reports behind the suggestion: a SQLite trigger) suggests nothing and
    counts nothing; the next cycle, once the database takes them, suggests the burst and counts
    it once."""
    warning = city.services.early_warning
    assert warning is not None
    now = utc_now()
    number = await _history(city, now)
    for i in range(6):
        await _report(city, number + i, now - timedelta(minutes=20 - 3 * i), ward="11")
    async with city.services.session_factory() as session, session.begin():
        await session.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON incident_suggestion_reports "
                "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
            )
        )
    with pytest.raises(IntegrityError, match="the disk is full"):
        await _read_all(warning)
    _, metrics = await _metrics(city)
    assert 'citybot_incident_suggestions_total{outcome="suggested"} 0.0' in metrics
    async with city.services.session_factory() as session, session.begin():
        assert await session.scalar(select(func.count()).select_from(IncidentSuggestion)) == 0
        await session.execute(text("DROP TRIGGER refuse"))
    await _read_all(warning)
    _, metrics = await _metrics(city)
    assert 'citybot_incident_suggestions_total{outcome="suggested"} 1.0' in metrics
