"""The admin API's suggested incidents: what early warning found, confirmed or dismissed.

Thin handlers over ``notifier.incident_suggestions``. Staff with ``incidents.review_suggestions``
(roles ``supervisor``, ``broadcaster``, ``approver``) list the suggestions in their wards, read one
with the reports behind it (reference, time, place: nothing personal), confirm it (a declared
incident, with everything a declaration does, and the residents behind the reports told once)
or dismiss it with a reason. Both are audited (``incident_suggestion.confirm``,
``incident_suggestion.dismiss``) in the same commit. The detector's precision by week is read by
the analytics page (``analytics.view``).

Example::

    GET  /api/v1/incident-suggestions?status=suggested
    POST /api/v1/incident-suggestions/4/confirm {"title": "Burst main in Makhaza"}
    POST /api/v1/incident-suggestions/5/dismiss {"reason": "a school's pupils, one event"}
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from bot.web import staff_api_schemas as schemas
from bot.web.staff_api_broadcasts import text_fields
from bot.web.staff_api_table import PAGING, ApiError, Call, Endpoint, Field, scoped_page
from notifier import incident_suggestions as suggestions
from notifier.broadcasts import LOCALES, URGENCIES
from notifier.incident_suggestions import STATUSES
from notifier.incidents import IncidentDraft
from staff import audit
from staff.identity import StaffIdentity
from staff.roles import Permission
from storage.models import IncidentSuggestion, Submission
from storage.types import utc_now

__all__ = ["ENDPOINTS"]

_ID = "{id:[^/]{1,40}}"


def _visible(identity: StaffIdentity, suggestion: IncidentSuggestion) -> bool:
    return identity.wards is None or set(suggestion.wards) <= identity.wards


def _json(s: IncidentSuggestion, call: Call) -> dict[str, Any]:
    forms = call.services.turn_loop.forms
    return {
        "id": s.id,
        "service": s.service,
        "service_title": forms[s.service].title if s.service in forms else s.service,
        "area": s.area,
        "area_name": suggestions.area_label(s.area),
        "wards": s.wards,
        "status": s.status,
        "count": s.window_count,
        "expected": round(s.expected, 3),
        "p_value": s.p_value,
        "report_count": s.report_count,
        "first_report_at": s.first_report_at,
        "latest_report_at": s.latest_report_at,
        "created_at": s.created_at,
        "decided_at": s.decided_at,
        "reason": s.reason,
        "incident_id": s.incident_id,
    }


def _report(r: Submission) -> dict[str, Any]:
    # Where and when, never who: no answers, no pin, no resident.
    return {
        "reference": r.reference,
        "service_code": r.service_code,
        "received_at": r.created_at,
        "ward": r.ward,
        "suburb": r.suburb,
        "area_type": r.area_type,
        "precision": r.precision,
        "status": r.status,
    }


async def _suggestion(call: Call, session: Any, *, for_update: bool = False) -> IncidentSuggestion:
    found = await suggestions.get(session, call.path_id(), for_update=for_update)
    if not _visible(call.identity, found):
        raise ApiError(404, "not_found", f"there is no suggestion {found.id}")
    return found


def _count(call: Call, outcome: str) -> None:
    warning = call.services.early_warning
    if warning is not None:
        warning.suggestions.labels(outcome=outcome).inc()


async def list_suggestions(call: Call) -> dict[str, Any]:
    query = select(IncidentSuggestion).order_by(IncidentSuggestion.id.desc())
    if call.cursor is not None:
        query = query.where(IncidentSuggestion.id < call.cursor)
    if call.query.get("status"):
        query = query.where(IncidentSuggestion.status == call.query["status"])
    return await scoped_page(
        call,
        query,
        lambda s: _visible(call.identity, s),
        lambda s: s.id,
        lambda s: _json(s, call),
    )


async def get_suggestion(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session:
        found = await _suggestion(call, session)
        reports = await suggestions.reports_behind(session, found.id)
        return {**_json(found, call), "reports": [_report(r) for r in reports]}


async def confirm_suggestion(call: Call) -> dict[str, Any]:
    body, identity = call.body, call.identity
    now = utc_now()
    async with call.services.session_factory() as session, session.begin():
        found = await _suggestion(call, session, for_update=True)
        reports = await suggestions.reports_behind(session, found.id)
        wards = [w.strip() for w in body.get("wards") or found.wards if w.strip()]
        if identity.wards is not None and not set(wards) <= identity.wards:
            outside = sorted(set(wards) - identity.wards)[0]
            raise ApiError(403, "forbidden", f"Ward {outside} is outside your wards.")
        forms = call.services.turn_loop.forms
        service_title = forms[found.service].title if found.service in forms else found.service
        # A grid square is named by the suburb most of its reports are in.
        where = Counter(r.suburb for r in reports if r.suburb).most_common(1)
        place = where[0][0] if where else None
        texts = {loc: body.get(f"text_{loc}") for loc in LOCALES}
        if not any(texts.values()):
            texts = dict(
                suggestions.standard_texts(service_title, found.area, LOCALES, where=place)
            )
        draft = IncidentDraft.checked(
            title=body.get("title")
            or f"{service_title}: {suggestions.area_label(found.area, where=place)}",
            services=[found.service],
            wards=wards,
            texts=texts,
            known_services=sorted(forms),
            urgency=body.get("urgency") or "routine",
            starts_at=found.first_report_at,
            expected_end_at=body.get("expected_end_at"),
        )
        incident, told = await suggestions.confirm(
            session, found, draft, actor_id=identity.account_id, now=now
        )
        await audit.record(
            session,
            actor=identity.actor,
            action="incident_suggestion.confirm",
            target=f"incident_suggestion:{found.id}",
            address=call.address,
            details={"incident": incident.id, "wards": wards, "residents_told": told},
        )
        answer = {**_json(found, call), "residents_told": told}
    _count(call, "confirmed")
    return answer


async def dismiss_suggestion(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        found = await _suggestion(call, session, for_update=True)
        await suggestions.dismiss(
            session,
            found,
            reason=call.body["reason"],
            actor_id=call.identity.account_id,
            now=utc_now(),
        )
        await audit.record(
            session,
            actor=call.identity.actor,
            action="incident_suggestion.dismiss",
            target=f"incident_suggestion:{found.id}",
            address=call.address,
            details={"reason": found.reason},
        )
        answer = _json(found, call)
    _count(call, "dismissed")
    return answer


async def suggestion_precision(call: Call) -> dict[str, Any]:
    weeks = int(call.query.get("weeks") or 12)
    async with call.services.session_factory() as session:
        weekly = await suggestions.precision_by_week(
            session, now=utc_now(), weeks=weeks, wards=call.identity.wards
        )
    return {"weeks": weekly}


S, NS, INT, NUMBER, TIME, NTIME = (
    schemas.S,
    schemas.NS,
    schemas.INT,
    schemas.NUMBER,
    schemas.TIME,
    schemas.NTIME,
)
_FIELDS: dict[str, Any] = {
    "id": INT,
    "service": S,
    "service_title": S,
    "area": S,
    "area_name": S,
    "wards": schemas.STRINGS,
    "status": S,
    "count": INT,
    "expected": NUMBER,
    "p_value": NUMBER,
    "report_count": INT,
    "first_report_at": TIME,
    "latest_report_at": TIME,
    "created_at": TIME,
    "decided_at": NTIME,
    "reason": NS,
    "incident_id": {"type": ["integer", "null"]},
}
SUGGESTION = schemas.obj(**_FIELDS)
REPORT = schemas.obj(
    reference=S,
    service_code=S,
    received_at=TIME,
    ward=NS,
    suburb=NS,
    area_type=NS,
    precision=NS,
    status=S,
)
PRECISION = schemas.obj(
    weeks={
        "type": "array",
        "items": schemas.obj(
            week=S,
            suggested=INT,
            confirmed=INT,
            dismissed=INT,
            precision={"type": ["number", "null"]},
        ),
    }
)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/incident-suggestions",
        "listIncidentSuggestions",
        "Incidents early warning suggests, newest first: a burst of similar reports against "
        "the place's usual rate (a ward-scoped account sees its wards' only)",
        list_suggestions,
        permission=Permission.REVIEW_SUGGESTIONS,
        scope="ward",
        tag="incidents",
        answer=schemas.paged(SUGGESTION),
        query=(*PAGING, Field("status", "string", "only these", enum=STATUSES)),
    ),
    Endpoint(
        "GET",
        "/incident-suggestions/precision",
        "incidentSuggestionPrecision",
        "Early warning's precision by week: suggestions confirmed / suggestions made",
        suggestion_precision,
        permission=Permission.VIEW_ANALYTICS,
        scope="ward",
        tag="incidents",
        answer=PRECISION,
        query=(Field("weeks", "integer", "how many weeks back (12)", minimum=1, maximum=104),),
    ),
    Endpoint(
        "GET",
        f"/incident-suggestions/{_ID}",
        "getIncidentSuggestion",
        "One suggestion, with the reports behind it (where and when; nothing personal)",
        get_suggestion,
        permission=Permission.REVIEW_SUGGESTIONS,
        scope="ward",
        tag="incidents",
        answer={
            **SUGGESTION,
            "properties": {**_FIELDS, "reports": {"type": "array", "items": REPORT}},
            "required": sorted([*_FIELDS, "reports"]),
        },
    ),
    Endpoint(
        "POST",
        f"/incident-suggestions/{_ID}/confirm",
        "confirmIncidentSuggestion",
        "Confirm it: it is declared a known incident (its area's subscribers told, later "
        "reporters told it is known) and the residents behind its reports are told once, in "
        "their language, that the city knows",
        confirm_suggestion,
        permission=Permission.REVIEW_SUGGESTIONS,
        scope="ward",
        tag="incidents",
        answer={
            **SUGGESTION,
            "properties": {**_FIELDS, "residents_told": INT},
            "required": sorted([*_FIELDS, "residents_told"]),
        },
        body=(
            Field("title", "string", "the incident's name (service and place)", max_length=120),
            Field("wards", "strings", "the wards affected (the reports' wards)"),
            *text_fields(required=False),
            Field("urgency", "string", "emergency goes out in quiet hours", enum=URGENCIES),
            Field("expected_end_at", "datetime", "when it should be fixed", nullable=True),
        ),
    ),
    Endpoint(
        "POST",
        f"/incident-suggestions/{_ID}/dismiss",
        "dismissIncidentSuggestion",
        "Dismiss it, saying why (audited); the detector learns nothing from a dismissal",
        dismiss_suggestion,
        permission=Permission.REVIEW_SUGGESTIONS,
        scope="ward",
        tag="incidents",
        answer=SUGGESTION,
        body=(
            Field("reason", "string", "why it is not an incident", required=True, max_length=500),
        ),
    ),
)
