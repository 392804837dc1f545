"""Residents' rights carried out by staff: an admin exports or erases a resident's data, audited.

The same record a resident gets from EXPORT MY DATA, and the same erasure as DELETE MY DATA
(``storage.resident_data``), so what a resident and an admin see and remove cannot drift apart.
Each function runs in the caller's transaction and records its action with ``staff.audit``
(target ``resident:N``), so the export or erasure and its audit row commit together. The admin
API checks the role (``admin``) before it calls these.

Example::

    async with sessionmaker() as session, session.begin():
        found = await find_residents(session, "+27831234567", actor="staff:3", address=None)
        record = await export_resident(session, found[0].id, actor="staff:3", address="10.0.0.5")
    async with sessionmaker() as session, session.begin():
        erased = await erase_resident(session, forms, 7, actor="staff:3", address="10.0.0.5")
    erased.reports     # 2
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forms_runtime.model import Form, personal_steps
from staff import audit
from staff.errors import InvalidStaffInput, NotFound
from storage.models import Resident, ResidentAddress
from storage.resident_data import ErasureCounts, erase_personal_data, resident_record
from storage.types import utc_now

__all__ = [
    "MAX_REASON_LENGTH",
    "ErasureCounts",
    "FoundResident",
    "ResidentNotFound",
    "erase_resident",
    "export_resident",
    "find_residents",
]

MAX_REASON_LENGTH = 500


class ResidentNotFound(NotFound):
    """No resident with that id (the admin API answers 404)."""


@dataclass(frozen=True, slots=True)
class FoundResident:
    id: int
    channels: list[str]
    created_at: datetime
    erased_at: datetime | None


def _address_forms(wanted: str) -> list[str]:
    """The ways one channel address is stored: a phone number is "+27..." on SMS and
    "whatsapp:+27..." on WhatsApp, so a request names it once."""
    wanted = wanted.strip()
    if not wanted or len(wanted) > 255:
        raise InvalidStaffInput("give the resident's address: a phone number or a chat id")
    bare = wanted.removeprefix("whatsapp:")
    return [bare, f"whatsapp:{bare}"]


async def find_residents(
    session: AsyncSession, wanted: str, *, actor: str, address: str | None
) -> list[FoundResident]:
    """The residents who write from ``wanted`` (a phone number or chat id: a POPIA request
    names a number, not an id). Looking someone up by their number is a view of personal data, so it is audited, with
    a hash of the number rather than the number (the audit log keeps no personal data)."""
    forms = _address_forms(wanted)
    rows = (
        await session.execute(
            select(Resident, ResidentAddress.channel)
            .join(ResidentAddress, ResidentAddress.resident_id == Resident.id)
            .where(ResidentAddress.address.in_(forms))
            .order_by(Resident.id, ResidentAddress.channel)
        )
    ).all()
    found: dict[int, FoundResident] = {}
    for resident, channel in rows:
        entry = found.setdefault(
            resident.id, FoundResident(resident.id, [], resident.created_at, resident.erased_at)
        )
        if channel not in entry.channels:
            entry.channels.append(channel)
    digest = hashlib.sha256(forms[0].encode()).hexdigest()[:16]
    await audit.record(
        session,
        actor=actor,
        action="resident.lookup",
        target=None,
        address=address,
        details={"address_sha256": digest, "found": sorted(found)},
    )
    return list(found.values())


async def export_resident(
    session: AsyncSession, resident_id: int, *, actor: str, address: str | None = None
) -> dict[str, Any]:
    """Everything held about a resident, as the resident's own export; audited as
    ``resident.export``. ``ResidentNotFound`` if there is no such resident (not audited)."""
    record = await resident_record(session, resident_id)
    if record is None:
        raise ResidentNotFound(f"no resident {resident_id}")
    await audit.record(
        session,
        actor=actor,
        action="resident.export",
        target=f"resident:{resident_id}",
        address=address,
    )
    return record


async def erase_resident(
    session: AsyncSession,
    forms: Mapping[str, Form],
    resident_id: int,
    *,
    actor: str,
    address: str | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> ErasureCounts:
    """Erase a resident's personal data as DELETE MY DATA does; audited as ``resident.erase``
    with the counts and the reason (the request it answers). ``ResidentNotFound`` if there is
    no such resident. Erasing twice is harmless: the second finds nothing personal left.

    The caller must then forget the resident's conversations (``counts.addresses``): their
    state lives with the turn loop, outside this transaction."""
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidStaffInput(f"the reason is longer than {MAX_REASON_LENGTH} characters")
    if await session.get(Resident, resident_id) is None:
        raise ResidentNotFound(f"no resident {resident_id}")
    counts = await erase_personal_data(
        session, resident_id, personal_steps=personal_steps(forms), now=now or utc_now()
    )
    await audit.record(
        session,
        actor=actor,
        action="resident.erase",
        target=f"resident:{resident_id}",
        address=address,
        details={
            "reports": counts.reports,
            "messages": counts.messages,
            **({"reason": reason.strip()} if reason.strip() else {}),
        },
    )
    return counts
