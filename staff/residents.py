"""Residents' rights carried out by staff: an admin exports or erases a resident's data, audited.

The same record a resident gets from EXPORT MY DATA, and the same erasure as DELETE MY DATA
(``storage.resident_data``), so what a resident and an admin see and remove cannot drift apart.
Each function runs in the caller's transaction and records its action with ``staff.audit``
(target ``resident:N``), so the export or erasure and its audit row commit together. The admin
API checks the role (``admin``) before it calls these.

Example::

    async with sessionmaker() as session, session.begin():
        record = await export_resident(session, 7, actor="staff:3", address="10.0.0.5")
    async with sessionmaker() as session, session.begin():
        erased = await erase_resident(session, forms, 7, actor="staff:3", address="10.0.0.5")
    erased.reports     # 2
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from forms_runtime.model import Form, personal_steps
from staff import audit
from storage.models import Resident
from storage.resident_data import ErasureCounts, erase_personal_data, resident_record
from storage.types import utc_now

__all__ = ["ErasureCounts", "ResidentNotFound", "erase_resident", "export_resident"]


class ResidentNotFound(LookupError):
    """No resident with that id (the admin API answers 404)."""


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
    now: datetime | None = None,
) -> ErasureCounts:
    """Erase a resident's personal data as DELETE MY DATA does; audited as ``resident.erase``
    with the counts. ``ResidentNotFound`` if there is no such resident. Erasing twice is
    harmless: the second finds nothing personal left."""
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
        details={"reports": counts.reports, "messages": counts.messages},
    )
    return counts
