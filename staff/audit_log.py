"""Reading the audit log: newest first, filtered by actor, action and time, a page at a time.

Writing and sealing are ``staff.audit``'s; this is what the admin API lists.

Example::

    async with sessionmaker() as session:
        page = await list_entries(session, AuditFilter(action="sign_in.failed"), limit=50)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from staff.paging import Page
from storage.models import AuditLog

__all__ = ["AuditFilter", "list_entries"]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    # An exact action ("account.create") or a family ending in a dot ("sign_in.").
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_entries(
    session: AsyncSession, where: AuditFilter, *, limit: int, before: int | None = None
) -> Page[AuditLog]:
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AuditLog.id < before)
    if where.actor is not None:
        query = query.where(AuditLog.actor == where.actor)
    if where.action is not None:
        if where.action.endswith("."):
            query = query.where(AuditLog.action.startswith(where.action, autoescape=True))
        else:
            query = query.where(AuditLog.action == where.action)
    if where.since is not None:
        query = query.where(AuditLog.at >= where.since)
    if where.until is not None:
        query = query.where(AuditLog.at < where.until)
    return Page.of((await session.scalars(query)).all(), limit, key=lambda row: row.id)
