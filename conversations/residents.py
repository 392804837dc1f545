"""The resident a conversation belongs to: a small profile that rides in the conversation state.

A turn needs four facts about the resident: their id (for the message log and submissions), their
language, their consent answer and whether they opted out. Reading those from SQL on every
message was a join and an update per turn; instead the profile is kept in the conversation state
(``envelope["resident"]``) and SQL is touched only when:

* the profile is missing (first contact, or a state that expired): find or create the resident
  (with the state in Redis, the first contacts of many turns at once: ``find_or_create_many``);
* the profile is older than the loop's ``profile_recheck`` (re-read, so an opt-out or erasure
  recorded elsewhere, such as Twilio's 21610 "the resident texted STOP to the carrier", is seen);
* the profile changed in the turn (locale, consent, opt-out): one ``UPDATE residents``
  (``resident_update``, a statement and its parameters, so many turns' updates can go as one);
* ``last_inbound_at`` is more than ``SEEN_RESOLUTION`` old (the WhatsApp 24-hour window needs it;
  being up to five minutes behind only makes the window look shorter, never longer).

Every statement is SQLAlchemy Core: no unit of work, no identity map, no per-turn metadata work.

Example::

    profile = await find_resident(session, "sms", "+27831234567")
    if profile is None:
        profile = await create_resident(session, "sms", "+27831234567", "zu", now)
    envelope["resident"] = profile.to_json()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import Update

from storage.models import Resident, ResidentAddress

__all__ = [
    "SEEN_RESOLUTION",
    "FirstContact",
    "ResidentFacts",
    "ResidentProfile",
    "create_resident",
    "find_or_create_many",
    "find_resident",
    "resident_update",
    "save_resident",
    "touch_address",
]

# How stale ``resident_addresses.last_inbound_at`` may get before a turn writes it again.
SEEN_RESOLUTION = timedelta(minutes=5)

_residents = cast(Table, Resident.__table__)
_addresses = cast(Table, ResidentAddress.__table__)

ResidentFacts = tuple[str, datetime | None, datetime | None, datetime | None]


@dataclass
class ResidentProfile:
    """What a turn knows about its resident; the first four fields after ``id`` are stored in SQL."""

    id: int
    locale: str
    consent_at: datetime | None = None
    consent_declined_at: datetime | None = None
    opted_out_at: datetime | None = None
    # When the profile was last read from SQL, and the ``last_inbound_at`` SQL holds.
    checked_at: datetime | None = None
    seen_at: datetime | None = None

    def facts(self) -> ResidentFacts:
        """The fields SQL keeps; a turn that changes them writes the resident back."""
        return (self.locale, self.consent_at, self.consent_declined_at, self.opted_out_at)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "locale": self.locale}
        for name in _TIMES:
            value = getattr(self, name)
            data[name] = value.isoformat() if value is not None else None
        return data

    @classmethod
    def from_json(cls, data: object) -> ResidentProfile | None:
        """The profile saved by ``to_json``; ``None`` when absent or unreadable (look it up)."""
        if not isinstance(data, dict):
            return None
        try:
            times = {
                name: datetime.fromisoformat(data[name]) if data.get(name) else None
                for name in _TIMES
            }
            return cls(id=int(data["id"]), locale=str(data["locale"]), **times)
        except (KeyError, TypeError, ValueError):
            return None


_TIMES = ("consent_at", "consent_declined_at", "opted_out_at", "checked_at", "seen_at")


_PROFILE_COLUMNS = (
    _residents.c.id,
    _residents.c.locale,
    _residents.c.consent_at,
    _residents.c.consent_declined_at,
    _residents.c.opted_out_at,
    _addresses.c.last_inbound_at,
)
_ADDRESS_JOIN = _addresses.join(_residents, _residents.c.id == _addresses.c.resident_id)
# Bind names differ from the column names: SQLAlchemy keeps those for the SET clause.
_SAVE = (
    update(_residents)
    .where(_residents.c.id == bindparam("b_id"))
    .values(
        locale=bindparam("b_locale"),
        consent_at=bindparam("b_consent_at"),
        consent_declined_at=bindparam("b_consent_declined_at"),
        opted_out_at=bindparam("b_opted_out_at"),
    )
)


@dataclass(frozen=True, slots=True)
class FirstContact:
    """An address whose resident a turn needs; ``locale`` and ``now`` if one is created."""

    channel: str
    address: str
    locale: str
    now: datetime


async def find_or_create_many(
    db: AsyncSession | AsyncConnection, contacts: Sequence[FirstContact]
) -> list[tuple[ResidentProfile, bool]]:
    """The resident of each contact's address, and whether it was created now.

    One ``SELECT`` for all the addresses, then one multi-row ``INSERT`` each for the residents
    not found and their addresses, in the caller's transaction.
    """
    pairs = list(dict.fromkeys((c.channel, c.address) for c in contacts))
    query = (
        select(*_PROFILE_COLUMNS, _addresses.c.channel, _addresses.c.address)
        .select_from(_ADDRESS_JOIN)
        .where(tuple_(_addresses.c.channel, _addresses.c.address).in_(pairs))
    )
    known: dict[tuple[str, str], ResidentProfile] = {
        (row[6], row[7]): ResidentProfile(*row[:5], seen_at=row[5])
        for row in (await db.execute(query)).all()
    }
    first: dict[tuple[str, str], FirstContact] = {}
    for contact in contacts:
        pair = (contact.channel, contact.address)
        if pair not in known:
            first.setdefault(pair, contact)
    new = list(first.values())
    if new:
        ids = (
            await db.execute(
                insert(_residents).returning(_residents.c.id, sort_by_parameter_order=True),
                [{"locale": c.locale, "created_at": c.now} for c in new],
            )
        ).scalars()
        for contact, resident_id in zip(new, ids, strict=True):
            known[(contact.channel, contact.address)] = ResidentProfile(
                resident_id, contact.locale, seen_at=contact.now
            )
        await db.execute(
            insert(_addresses),
            [
                {
                    "resident_id": known[(c.channel, c.address)].id,
                    "channel": c.channel,
                    "address": c.address,
                    "last_inbound_at": c.now,
                    "created_at": c.now,
                }
                for c in new
            ],
        )
    results: list[tuple[ResidentProfile, bool]] = []
    for contact in contacts:
        pair = (contact.channel, contact.address)
        created = first.get(pair) is contact
        results.append((replace(known[pair], checked_at=contact.now), created))
    return results


async def find_resident(
    session: AsyncSession, channel: str, address: str, now: datetime | None = None
) -> ResidentProfile | None:
    """The resident reached at ``channel``/``address``, or ``None`` if there is none."""
    row = (
        await session.execute(
            select(*_PROFILE_COLUMNS)
            .select_from(_ADDRESS_JOIN)
            .where(_addresses.c.channel == channel, _addresses.c.address == address)
        )
    ).first()
    if row is None:
        return None
    return ResidentProfile(*row[:5], checked_at=now, seen_at=row[5])


async def create_resident(
    session: AsyncSession, channel: str, address: str, locale: str, now: datetime
) -> ResidentProfile:
    """A new resident and their first address (first contact)."""
    resident_id = (
        await session.execute(
            insert(_residents).values(locale=locale, created_at=now).returning(_residents.c.id)
        )
    ).scalar_one()
    await session.execute(
        insert(_addresses).values(
            resident_id=resident_id,
            channel=channel,
            address=address,
            last_inbound_at=now,
            created_at=now,
        )
    )
    return ResidentProfile(resident_id, locale, checked_at=now, seen_at=now)


def resident_update(profile: ResidentProfile) -> tuple[Update, dict[str, Any]]:
    """The statement and parameters that write the profile's stored fields back."""
    return _SAVE, {
        "b_id": profile.id,
        "b_locale": profile.locale,
        "b_consent_at": profile.consent_at,
        "b_consent_declined_at": profile.consent_declined_at,
        "b_opted_out_at": profile.opted_out_at,
    }


async def save_resident(session: AsyncSession, profile: ResidentProfile) -> None:
    """Write the profile's stored fields back (after a turn changed them)."""
    await session.execute(*resident_update(profile))


async def touch_address(session: AsyncSession, channel: str, address: str, at: datetime) -> None:
    """Record when the resident last wrote on this channel (the WhatsApp 24-hour window)."""
    await session.execute(
        update(_addresses)
        .where(_addresses.c.channel == channel, _addresses.c.address == address)
        .values(last_inbound_at=at)
    )
