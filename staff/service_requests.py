"""Service requests as staff see them: listed by ward, area type and status with personal data
masked, their status and notes changed, a resident's phone number revealed on purpose.

A request is a ``Submission`` (citybot's record of a report, with its wards and area type); where
it was filed with the built-in GeoReport server its status and notes live on that server's
``Open311Request`` row, which is what a status change writes (the status poller then tells the
resident, as for a city's own server). A request filed with a city's own Open311 server is
changed in that system, so a change here is refused with ``Conflict``; so is one of a service
with a back end of its own (``elsewhere``: a transport operator's, which numbers its requests
itself), never matched to the built-in server's request of the same number.

Requests another client posted straight to the built-in GeoReport server have no citybot report
behind them; ``source="open311"`` lists them, under the reference ``GR-`` and the server's id
(citybot's own are always ``CT-`` and six letters), and the same status change and reveal work
on them. They carry no ward, so only city-wide identities see them.

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
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, String, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from staff import audit
from staff.errors import Conflict, InvalidStaffInput, NotFound
from staff.identity import StaffIdentity
from staff.paging import Page
from storage.models import Open311Request, ResidentAddress, Submission
from storage.types import utc_now

__all__ = [
    "DIRECT_PREFIX",
    "MAX_NOTES_LENGTH",
    "SOURCES",
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
# Where a listed request comes from: citybot's residents, or another client of the built-in
# GeoReport server.
SOURCES = ("citybot", "open311")
DIRECT_PREFIX = "GR-"
# The channels whose address is a phone number (WhatsApp's as "whatsapp:+27...").
_PHONE_CHANNELS = ("sms", "whatsapp")


@dataclass(frozen=True, slots=True)
class RequestFilter:
    ward: str | None = None
    area_type: str | None = None
    status: str | None = None
    source: str = "citybot"


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
    elsewhere: Collection[str] = (),
) -> Page[RequestSummary]:
    """Requests newest first, within the identity's wards, personal data masked; ``elsewhere``
    the service codes filed with a back end of their own (no built-in server status)."""
    if where.source == "open311":
        return await _list_direct(
            session, identity, where, limit=limit, before=before, elsewhere=elsewhere
        )
    query = (
        select(Submission, Open311Request)
        .outerjoin(Open311Request, _on_builtin_server(elsewhere))
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


def _on_builtin_server(elsewhere: Collection[str]) -> ColumnElement[bool]:
    """A report and the built-in server's row it was filed as: the same number, and a service
    without a back end of its own (whose numbers are that back end's, not the server's)."""
    same_number = cast(Open311Request.id, String) == Submission.service_request_id
    if not elsewhere:
        return same_number
    return and_(same_number, Submission.service_code.not_in(list(elsewhere)))


def _direct(elsewhere: Collection[str] = ()) -> ColumnElement[bool]:
    """Built-in server rows with no citybot report behind them."""
    filed = select(Submission.id).where(_on_builtin_server(elsewhere))
    return ~filed.exists()


async def _list_direct(
    session: AsyncSession,
    identity: StaffIdentity,
    where: RequestFilter,
    *,
    limit: int,
    before: int | None,
    elsewhere: Collection[str],
) -> Page[RequestSummary]:
    if identity.wards is not None or where.ward is not None or where.area_type is not None:
        # No ward or area type is known for these yet, so none is in any ward's list.
        return Page(items=[], next_cursor=None)
    query = select(Open311Request).where(_direct(elsewhere)).order_by(Open311Request.id.desc())
    if before is not None:
        query = query.where(Open311Request.id < before)
    if where.status is not None:
        query = query.where(Open311Request.status == where.status)
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    page = Page.of(rows, limit, key=lambda row: row.id)
    return Page(items=[_direct_summary(o) for o in page.items], next_cursor=page.next_cursor)


def _direct_summary(o: Open311Request) -> RequestSummary:
    return RequestSummary(
        reference=f"{DIRECT_PREFIX}{o.id}",
        service_code=o.service_code,
        channel=None,
        ward=None,
        wards=None,
        area_type=None,
        address_string=o.address_string,
        filing="filed",
        service_request_id=str(o.id),
        status=o.status,
        status_notes=o.status_notes,
        created_at=o.requested_datetime,
        phones_masked=[mask_phone(o.phone)] if o.phone else [],
    )


async def _direct_row(
    session: AsyncSession, identity: StaffIdentity, reference: str, elsewhere: Collection[str]
) -> Open311Request | None:
    """The built-in server's row a ``GR-`` reference names, if it is one with no citybot
    report (a citybot report is changed under its own reference) and the identity is city-wide."""
    number = reference.strip().upper().removeprefix(DIRECT_PREFIX)
    if not reference.strip().upper().startswith(DIRECT_PREFIX) or not number.isdigit():
        return None
    if identity.wards is not None or len(number) > 18:
        return None
    return await session.scalar(
        select(Open311Request).where(Open311Request.id == int(number), _direct(elsewhere))
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
    elsewhere: Collection[str] = (),
) -> RequestSummary:
    """Set the status (and notes, when given) on the built-in server's row, audited."""
    if status not in STATUSES:
        raise InvalidStaffInput(f"status is one of {', '.join(STATUSES)}")
    if notes is not None and len(notes) > MAX_NOTES_LENGTH:
        raise InvalidStaffInput(f"the notes are longer than {MAX_NOTES_LENGTH} characters")
    direct = await _direct_row(session, identity, reference, elsewhere)
    submission = None if direct is not None else await _submission(session, identity, reference)
    row = direct
    if (
        submission is not None
        and (submission.service_request_id or "").isdigit()
        and submission.service_code not in elsewhere
    ):
        row = await session.get(Open311Request, int(submission.service_request_id or 0))
    if row is None:
        raise Conflict(
            f"{reference.strip().upper()} is not on citybot's built-in Open311 server (not filed "
            "yet, or filed with the city's or its operator's own system, where its status is "
            "changed)"
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
        target=f"request:{submission.reference if submission else f'{DIRECT_PREFIX}{row.id}'}",
        address=address,
        details={k: {"from": before[k], "to": v} for k, v in after.items() if before[k] != v},
    )
    if submission is None:
        return _direct_summary(row)
    phones = await _phones(session, [submission.resident_id] if submission.resident_id else [])
    return _summary(submission, row, phones.get(submission.resident_id or 0, []))


async def reveal_phones(
    session: AsyncSession,
    identity: StaffIdentity,
    reference: str,
    *,
    address: str | None,
    elsewhere: Collection[str] = (),
) -> list[str]:
    """The resident's phone numbers for one request, the view audited (even when there are none)."""
    direct = await _direct_row(session, identity, reference, elsewhere)
    if direct is not None:
        numbers = [direct.phone] if direct.phone else []
        await audit.record(
            session,
            actor=identity.actor,
            action="resident.view_personal",
            target=None,
            address=address,
            details={
                "request": f"{DIRECT_PREFIX}{direct.id}",
                "what": "phone",
                "found": len(numbers),
            },
        )
        return numbers
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
