"""The admin API's incident endpoints: declare a known incident, change or end it, list them.

Thin handlers over ``notifier.incidents``. Staff (role ``broadcaster`` or ``approver``) or
another city system with an API token declare; a ward-scoped account declares only in its wards
and sees only incidents there. Every declaration and change is audited (``incident.declare``,
``incident.change``) in the same commit, with the broadcast that tells the area's subscribers.

Example::

    POST /api/v1/incidents {"title": "Burst main", "services": ["no_water"], "wards": ["9"],
                            "text_en": "No water in ward 9 until 18:00.", "expected_end_at": ...}
    PATCH /api/v1/incidents/4 {"status": "resolved"}
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.web import staff_api_schemas as schemas
from bot.web.staff_api_broadcasts import text_fields
from bot.web.staff_api_table import PAGING, ApiError, Call, Endpoint, Field, scoped_page
from notifier import incidents
from notifier.broadcasts import LOCALES, URGENCIES
from notifier.incidents import STATUSES, IncidentDraft
from staff import audit
from staff.identity import StaffIdentity
from staff.roles import Permission
from storage.models import Incident
from storage.types import utc_now

__all__ = ["ENDPOINTS"]

_ID = "{id:[^/]{1,40}}"


def _visible(identity: StaffIdentity, incident: Incident) -> bool:
    return identity.wards is None or set(incident.wards) <= identity.wards


def _json(i: Incident) -> dict[str, Any]:
    return {
        "id": i.id,
        "title": i.title,
        "services": i.services,
        "topic": i.topic,
        "wards": i.wards,
        "texts": i.texts,
        "urgency": i.urgency,
        "status": i.status,
        "starts_at": i.starts_at,
        "expected_end_at": i.expected_end_at,
        "ended_at": i.ended_at,
        "duplicates_avoided": i.duplicates_avoided,
        "author_id": i.author_id,
        "created_at": i.created_at,
    }


async def _incident(call: Call, session: Any, *, for_update: bool = False) -> Incident:
    found = await incidents.get(session, call.path_id(), for_update=for_update)
    if not _visible(call.identity, found):
        raise ApiError(404, "not_found", f"there is no incident {found.id}")
    return found


async def list_incidents(call: Call) -> dict[str, Any]:
    query = select(Incident).order_by(Incident.id.desc())
    if call.cursor is not None:
        query = query.where(Incident.id < call.cursor)
    if call.query.get("status"):
        query = query.where(Incident.status == call.query["status"])
    return await scoped_page(
        call, query, lambda i: _visible(call.identity, i), lambda i: i.id, _json
    )


async def declare_incident(call: Call) -> dict[str, Any]:
    body, identity = call.body, call.identity
    wards = [w.strip() for w in body["wards"] if w.strip()]
    if identity.wards is not None and not set(wards) <= identity.wards:
        outside = sorted(set(wards) - identity.wards)[0]
        raise ApiError(403, "forbidden", f"Ward {outside} is outside your wards.")
    draft = IncidentDraft.checked(
        title=body["title"],
        services=body["services"],
        wards=wards,
        texts={loc: body.get(f"text_{loc}") for loc in LOCALES},
        known_services=sorted(call.services.turn_loop.forms),
        urgency=body.get("urgency") or "routine",
        starts_at=body.get("starts_at"),
        expected_end_at=body.get("expected_end_at"),
    )
    now = utc_now()
    async with call.services.session_factory() as session, session.begin():
        incident = await incidents.declare(session, draft, author_id=identity.account_id, now=now)
        await audit.record(
            session,
            actor=identity.actor,
            action="incident.declare",
            target=f"incident:{incident.id}",
            address=call.address,
            details={"services": list(draft.services), "wards": list(draft.wards)},
        )
        return _json(incident)


async def get_incident(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session:
        return _json(await _incident(call, session))


async def change_incident(call: Call) -> dict[str, Any]:
    body = call.body
    async with call.services.session_factory() as session, session.begin():
        incident = await _incident(call, session, for_update=True)
        changed = await incidents.change(
            session,
            incident,
            actor_id=call.identity.account_id,
            now=utc_now(),
            status=body.get("status"),
            expected_end_at=body.get("expected_end_at"),
            texts={loc: body.get(f"text_{loc}") for loc in LOCALES},
        )
        await audit.record(
            session,
            actor=call.identity.actor,
            action="incident.change",
            target=f"incident:{incident.id}",
            address=call.address,
            details=changed,
        )
        return _json(incident)


S, INT, TIME, NTIME = schemas.S, schemas.INT, schemas.TIME, schemas.NTIME
INCIDENT = schemas.obj(
    id=INT,
    title=S,
    services=schemas.STRINGS,
    topic=S,
    wards=schemas.STRINGS,
    texts={"type": "object", "additionalProperties": S},
    urgency=S,
    status=S,
    starts_at=TIME,
    expected_end_at=NTIME,
    ended_at=NTIME,
    duplicates_avoided=INT,
    author_id=INT,
    created_at=TIME,
)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/incidents",
        "listIncidents",
        "Known incidents, newest first (a ward-scoped account sees its wards' only)",
        list_incidents,
        permission=Permission.DECLARE_INCIDENTS,
        scope="ward",
        tag="incidents",
        answer=schemas.paged(INCIDENT),
        query=(*PAGING, Field("status", "string", "only these", enum=STATUSES)),
    ),
    Endpoint(
        "POST",
        "/incidents",
        "declareIncident",
        "Declare a known incident: its area's subscribers are told, and residents who start a "
        "report it explains are told it is known",
        declare_incident,
        permission=Permission.DECLARE_INCIDENTS,
        scope="ward",
        tag="incidents",
        status=201,
        answer=INCIDENT,
        body=(
            Field(
                "title", "string", "a short name, used in updates", required=True, max_length=120
            ),
            Field("services", "strings", "the report forms it explains", required=True),
            Field("wards", "strings", "the wards affected", required=True, max_length=8),
            *text_fields(required=True),
            Field("urgency", "string", "emergency goes out in quiet hours", enum=URGENCIES),
            Field("starts_at", "datetime", "when it started (now)", nullable=True),
            Field("expected_end_at", "datetime", "when it should be fixed", nullable=True),
        ),
    ),
    Endpoint(
        "GET",
        f"/incidents/{_ID}",
        "getIncident",
        "One incident, with the duplicates it avoided",
        get_incident,
        permission=Permission.DECLARE_INCIDENTS,
        scope="ward",
        tag="incidents",
        answer=INCIDENT,
    ),
    Endpoint(
        "PATCH",
        f"/incidents/{_ID}",
        "changeIncident",
        "Move the expected end, end it (resolved, cancelled) or send an update: subscribers "
        "are told again (a standard text in their language unless texts are given)",
        change_incident,
        permission=Permission.DECLARE_INCIDENTS,
        scope="ward",
        tag="incidents",
        answer=INCIDENT,
        body=(
            Field("status", "string", "open, resolved or cancelled", enum=STATUSES),
            Field("expected_end_at", "datetime", "the new expected end", nullable=True),
            *text_fields(required=False),
        ),
    ),
)
