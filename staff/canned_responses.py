"""Canned responses: the texts agents pick from in the reply box, kept per language.

A supervisor (``conversations.manage_queue``) writes, changes and deletes them; every agent
reads them. Each change is audited (``canned.create``, ``.update``, ``.delete``) in the caller's
transaction. ``for_language`` is what the reply box offers a conversation: one text per name,
in the resident's language where it is written, else in English (``language`` says which).

Example::

    async with sessionmaker() as session, session.begin():
        await create(session, identity, "greeting", "zu", "Sawubona!", address="10.0.0.5")
        offered = await for_language(session, "zu")
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from staff import audit
from staff.errors import Conflict, InvalidStaffInput, NotFound
from staff.identity import StaffIdentity
from storage.models import CannedResponse

__all__ = [
    "FALLBACK",
    "LANGUAGES",
    "MAX_TEXT",
    "create",
    "delete",
    "for_language",
    "listed",
    "update",
]

# The languages the bot speaks; English is what a conversation falls back to.
LANGUAGES = ("en", "af", "zu", "xh")
FALLBACK = "en"
# As long as an agent's reply may be (staff.support.MAX_TEXT).
MAX_TEXT = 1600
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _checked(name: str, locale: str, text: str) -> tuple[str, str, str]:
    name = name.strip().lower()
    if not _NAME.fullmatch(name):
        raise InvalidStaffInput(
            "name is 1 to 64 lowercase letters, digits, '-' or '_', like water_outage"
        )
    if locale not in LANGUAGES:
        raise InvalidStaffInput(f"language is one of {', '.join(LANGUAGES)}")
    text = text.strip()
    if not text:
        raise InvalidStaffInput("write the text")
    if len(text) > MAX_TEXT:
        raise InvalidStaffInput(f"at most {MAX_TEXT} characters")
    return name, locale, text


async def listed(session: AsyncSession, *, language: str | None = None) -> list[CannedResponse]:
    """Every canned response (of one language), by name then language."""
    query = select(CannedResponse).order_by(CannedResponse.name, CannedResponse.locale)
    if language:
        query = query.where(CannedResponse.locale == language)
    return list((await session.scalars(query)).all())


async def for_language(session: AsyncSession, language: str) -> list[CannedResponse]:
    """One text per name for a conversation in ``language``: its own, else the English one."""
    rows = await session.scalars(
        select(CannedResponse)
        .where(CannedResponse.locale.in_({language, FALLBACK}))
        .order_by(CannedResponse.name)
    )
    chosen: dict[str, CannedResponse] = {}
    for row in rows:
        if row.name not in chosen or row.locale == language:
            chosen[row.name] = row
    return list(chosen.values())


async def create(
    session: AsyncSession,
    identity: StaffIdentity,
    name: str,
    locale: str,
    text: str,
    *,
    address: str | None,
) -> CannedResponse:
    name, locale, text = _checked(name, locale, text)
    row = CannedResponse(name=name, locale=locale, text=text, updated_by=identity.actor)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"there is a {name!r} in {locale} already: change that one") from None
    await _audit(session, identity, "canned.create", row, address)
    return row


async def update(
    session: AsyncSession,
    identity: StaffIdentity,
    canned_id: int,
    text: str,
    *,
    address: str | None,
) -> CannedResponse:
    row = await _row(session, canned_id)
    _, _, row.text = _checked(row.name, row.locale, text)
    row.updated_by = identity.actor
    await session.flush()
    await _audit(session, identity, "canned.update", row, address)
    return row


async def delete(
    session: AsyncSession, identity: StaffIdentity, canned_id: int, *, address: str | None
) -> CannedResponse:
    row = await _row(session, canned_id)
    await session.delete(row)
    await _audit(session, identity, "canned.delete", row, address)
    return row


async def _row(session: AsyncSession, canned_id: int) -> CannedResponse:
    row = await session.get(CannedResponse, canned_id, with_for_update=True)
    if row is None:
        raise NotFound(f"there is no canned response {canned_id}")
    return row


async def _audit(
    session: AsyncSession,
    identity: StaffIdentity,
    action: str,
    row: CannedResponse,
    address: str | None,
) -> None:
    await audit.record(
        session,
        actor=identity.actor,
        action=action,
        target=f"canned:{row.id}",
        address=address,
        details={"name": row.name, "language": row.locale},
    )
