"""The admin API's digest endpoint: a ward's daily digest of reports, as residents get it, for
ward councillors' offices.

``GET /api/v1/digests?ward=94&date=2026-12-04`` answers what ``notifier.digests`` sends to the
residents who follow that ward (the new reports per service, the status changes per status,
each reference), and the message itself in each language as SMS carries it. It names services,
statuses and reference numbers only: no resident, no address, no free text. Permission
``analytics.view`` (analysts, supervisors), within the caller's wards; each reading is audited
(``digest.view``).

Example::

    GET /api/v1/digests?ward=94               -> the latest day whose digest time has passed
"""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.web import staff_api_schemas as schemas
from bot.web.staff_api_table import ApiError, Call, Endpoint, Field
from notifier.broadcasts import LOCALES
from notifier.digests import Digest, day_events, render
from staff import audit
from staff.roles import Permission
from storage.types import utc_now

__all__ = ["ENDPOINTS"]


def _day(raw: str | None, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "invalid_input", f"date is YYYY-MM-DD, not {raw[:20]!r}") from None


async def ward_digest(call: Call) -> dict[str, Any]:
    sender = call.services.digests
    if sender is None:
        raise ApiError(404, "not_found", "the daily digest is off (CITYBOT_DIGEST_TIME=off)")
    ward = str(call.query["ward"]).strip()
    wards = call.identity.wards
    if wards is not None and ward not in wards:
        raise ApiError(403, "forbidden", f"Ward {ward} is outside your wards.")
    schedule, now = sender.settings.schedule, utc_now()
    day = _day(call.query.get("date"), schedule.due_day(now))
    start, end = schedule.window(day)
    async with call.services.session_factory() as session, session.begin():
        events = await day_events(session, start, end, ward=ward)
        await audit.record(
            session,
            actor=call.identity.actor,
            action="digest.view",
            target=f"ward:{ward}"[:128],
            address=call.address,
            details={"date": day.isoformat()},
        )
    digest = Digest.of(events, day=day, place=f"ward {ward}", wards=(ward,))
    return {
        "ward": ward,
        "date": day.isoformat(),
        "from": start,
        "to": end,
        # Before the digest time the day is still going: this is what it holds so far.
        "complete": end <= now,
        "new_reports": len(digest.new),
        "new_by_service": dict(digest.new_by_service()),
        "status_changes": len(digest.changed),
        "changes_by_status": dict(digest.changes_by_status()),
        "reports": [
            {"reference": e.reference, "service": e.service, "status": e.status}
            for e in (*digest.new, *digest.changed)
        ],
        # What a resident following the ward reads (empty: nothing happened, nothing is sent).
        "texts": {
            locale: "" if digest.empty else render(digest, locale, "sms", sender.titles)
            for locale in LOCALES
        },
    }


S, INT = schemas.S, schemas.INT
COUNTS = {"type": "object", "additionalProperties": INT}
DIGEST = schemas.obj(
    ward=S,
    date=S,
    to=schemas.TIME,
    complete={"type": "boolean"},
    new_reports=INT,
    new_by_service=COUNTS,
    status_changes=INT,
    changes_by_status=COUNTS,
    reports={
        "type": "array",
        "items": schemas.obj(reference=S, service=S, status=schemas.NS),
    },
    texts={"type": "object", "additionalProperties": S},
    **{"from": schemas.TIME},
)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/digests",
        "wardDigest",
        "A ward's daily digest of reports (new reports and status changes, references, and the "
        "message its subscribers get), for councillors' offices",
        ward_digest,
        permission=Permission.VIEW_ANALYTICS,
        scope="ward",
        tag="digests",
        answer=DIGEST,
        query=(
            Field("ward", "string", "the ward", required=True, max_length=32),
            Field(
                "date",
                "string",
                "the day, YYYY-MM-DD (the latest whose digest time has passed)",
                max_length=10,
            ),
        ),
    ),
)
