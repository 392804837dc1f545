"""Service requests as staff see them: listed by ward, area type and status with personal data
masked, their status and notes changed, a resident's phone number revealed on purpose.

A request is a ``Submission`` (citybot's record of a report, with its wards and area type); where
it was filed with the built-in GeoReport server its status and notes live on that server's
``Open311Request`` row, which is what a status change writes (the status poller then tells the
resident, as for a city's own server). A request filed with a city's own Open311 server is
changed in that system, so a change here is refused with ``Conflict``.

Ward scope: an identity with wards sees only requests whose ward is one of them; anything else
is ``NotFound``, exactly as if it did not exist.

Example::

    async with sessionmaker() as session:
        page = await list_requests(session, identity, RequestFilter(ward="115"), limit=50)
    async with sessionmaker() as session, session.begin():
        await change_status(session, identity, "CT-7KQ2MX", "closed", "Filled on 3 March",
                            address="10.0.0.5")
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from staff import audit
from staff.errors import Conflict, InvalidStaffInput, NotFound
from staff.identity import StaffIdentity
from staff.paging import Page
from storage.models import Open311Request, ResidentAddress, Submission
from storage.types import utc_now

__all__ = [
    "MAX_NOTES_LENGTH",
    "STATUSES",
    "RequestFilter",
    "RequestSummary",
    "change_status",
    "list_requests",
    "mask_phone",
    "reveal_phones",
]

# GeoReport v2's two statuses.
STATUSES = ("open", "closed")
MAX_NOTES_LENGTH = 4000
# The channels whose address is a phone number (WhatsApp's as "whatsapp:+27...").
_PHONE_CHANNELS = ("sms", "whatsapp")


@dataclass(frozen=True, slots=True)
class RequestFilter:
    ward: str | None = None
    area_type: str | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class RequestSummary:
    reference: str
    service_code: str
    channel: str | None
    ward: str | None
    wards: list[str] | None
    area_type: str | None
    address_string: str | None
    # The filing's progress ("pending", "filed", ...) and, once filed, the city's status.
    filing: str
    service_request_id: str | None
    status: str | None
    status_notes: str | None
    created_at: datetime
    # The resident's phone numbers, masked ("*******4567"); revealed only on purpose.
    phones_masked: list[str]


def mask_phone(phone: str) -> str:
    digits = phone.removeprefix("whatsapp:")
    return "*" * max(0, len(digits) - 4) + digits[-4:]


def _visible(identity: StaffIdentity) -> ColumnElement[bool] | None:
    wards = identity.wards
    return None if wards is None else Submission.ward.in_(sorted(wards))


async def _phones(session: AsyncSession, resident_ids: Iterable[int]) -> dict[int, list[str]]:
    ids = sorted(set(resident_ids))
    found: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return found
    rows = await session.execute(
        select(ResidentAddress.resident_id, ResidentAddress.address)
        .where(
            ResidentAddress.resident_id.in_(ids),
            ResidentAddress.channel.in_(_PHONE_CHANNELS),
        )
        .order_by(ResidentAddress.id)
    )
    for resident_id, address in rows:
        number = address.removeprefix("whatsapp:")
        if number not in found[resident_id]:
            found[resident_id].append(number)
    return found


async def list_requests(
    session: AsyncSession,
    identity: StaffIdentity,
    where: RequestFilter,
    *,
    limit: int,
    before: int | None = None,
) -> Page[RequestSummary]:
    """Requests newest first, within the identity's wards, personal data masked."""
    query = (
        select(Submission, Open311Request)
        .outerjoin(Open311Request, cast(Open311Request.id, String) == Submission.service_request_id)
        .order_by(Submission.id.desc())
        .limit(limit + 1)
    )
    visible = _visible(identity)
    if visible is not None:
        query = query.where(visible)
    if before is not None:
        query = query.where(Submission.id < before)
    if where.ward is not None:
        query = query.where(Submission.ward == where.ward)
    if where.area_type is not None:
        query = query.where(Submission.area_type == where.area_type)
    if where.status is not None:
        query = query.where(Open311Request.status == where.status)
    rows = [(row[0], row[1]) for row in await session.execute(query)]
    page = Page.of(rows, limit, key=lambda row: row[0].id)
    phones = await _phones(session, (s.resident_id for s, _ in page.items if s.resident_id))
    return Page(
        items=[_summary(s, o, phones.get(s.resident_id or 0, [])) for s, o in page.items],
        next_cursor=page.next_cursor,
    )


def _summary(s: Submission, o: Open311Request | None, phones: list[str]) -> RequestSummary:
    return RequestSummary(
        reference=s.reference,
        service_code=s.service_code,
        channel=s.channel,
        ward=s.ward,
        wards=s.wards,
        area_type=s.area_type,
        address_string=s.address_string,
        filing=s.status,
        service_request_id=s.service_request_id,
        status=None if o is None else o.status,
        status_notes=None if o is None else o.status_notes,
        created_at=s.created_at,
        phones_masked=[mask_phone(p) for p in phones],
    )


async def _submission(session: AsyncSession, identity: StaffIdentity, reference: str) -> Submission:
    query = select(Submission).where(Submission.reference == reference.strip().upper())
    visible = _visible(identity)
    if visible is not None:
        query = query.where(visible)
    found = await session.scalar(query)
    if found is None:
        raise NotFound(f"there is no service request {reference}")
    return found


async def change_status(
    session: AsyncSession,
    identity: StaffIdentity,
    reference: str,
    status: str,
    notes: str | None,
    *,
    address: str | None,
) -> RequestSummary:
    """Set the status (and notes, when given) on the built-in server's row, audited."""
    if status not in STATUSES:
        raise InvalidStaffInput(f"status is one of {', '.join(STATUSES)}")
    if notes is not None and len(notes) > MAX_NOTES_LENGTH:
        raise InvalidStaffInput(f"the notes are longer than {MAX_NOTES_LENGTH} characters")
    submission = await _submission(session, identity, reference)
    row = None
    if submission.service_request_id and submission.service_request_id.isdigit():
        row = await session.get(Open311Request, int(submission.service_request_id))
    if row is None:
        raise Conflict(
            f"{submission.reference} is not on citybot's built-in Open311 server (not filed yet, "
            "or filed with the city's own system, where its status is changed)"
        )
    before = {"status": row.status, "status_notes": row.status_notes}
    row.status = status
    if notes is not None:
        row.status_notes = notes.strip() or None
    row.updated_datetime = utc_now()
    await session.flush()
    after = {"status": row.status, "status_notes": row.status_notes}
    await audit.record(
        session,
        actor=identity.actor,
        action="request.update",
        target=f"request:{submission.reference}",
        address=address,
        details={k: {"from": before[k], "to": v} for k, v in after.items() if before[k] != v},
    )
    phones = await _phones(session, [submission.resident_id] if submission.resident_id else [])
    return _summary(submission, row, phones.get(submission.resident_id or 0, []))


async def reveal_phones(
    session: AsyncSession, identity: StaffIdentity, reference: str, *, address: str | None
) -> list[str]:
    """The resident's phone numbers for one request, the view audited (even when there are none)."""
    submission = await _submission(session, identity, reference)
    phones = await _phones(session, [submission.resident_id] if submission.resident_id else [])
    numbers = phones.get(submission.resident_id or 0, [])
    await audit.record(
        session,
        actor=identity.actor,
        action="resident.view_personal",
        target=f"resident:{submission.resident_id}" if submission.resident_id else None,
        address=address,
        details={"request": submission.reference, "what": "phone", "found": len(numbers)},
    )
    return numbers
