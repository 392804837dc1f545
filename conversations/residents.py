"""The resident a conversation belongs to: a small profile that rides in the conversation state.

A turn needs four facts about the resident: their id (for the message log and submissions), their
language, their consent answer and whether they opted out. Reading those from SQL on every
message was a join and an update per turn; instead the profile is kept in the conversation state
(``envelope["resident"]``) and SQL is touched only when:

* the profile is missing (first contact, or a state that expired): find or create the resident;
* the profile is older than the loop's ``profile_recheck`` (re-read, so an opt-out or erasure
  recorded elsewhere, such as Twilio's 21610 "the resident texted STOP to the carrier", is seen);
* the profile changed in the turn (locale, consent, opt-out): one ``UPDATE residents``;
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

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Resident, ResidentAddress

__all__ = [
    "SEEN_RESOLUTION",
    "ResidentFacts",
    "ResidentProfile",
    "create_resident",
    "find_resident",
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


async def find_resident(
    session: AsyncSession, channel: str, address: str, now: datetime | None = None
) -> ResidentProfile | None:
    """The resident reached at ``channel``/``address``, or ``None`` if there is none."""
    row = (
        await session.execute(
            select(
                _residents.c.id,
                _residents.c.locale,
                _residents.c.consent_at,
                _residents.c.consent_declined_at,
                _residents.c.opted_out_at,
                _addresses.c.last_inbound_at,
            )
            .select_from(_addresses.join(_residents, _residents.c.id == _addresses.c.resident_id))
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


async def save_resident(session: AsyncSession, profile: ResidentProfile) -> None:
    """Write the profile's stored fields back (after a turn changed them)."""
    await session.execute(
        update(_residents)
        .where(_residents.c.id == profile.id)
        .values(
            locale=profile.locale,
            consent_at=profile.consent_at,
            consent_declined_at=profile.consent_declined_at,
            opted_out_at=profile.opted_out_at,
        )
    )


async def touch_address(session: AsyncSession, channel: str, address: str, at: datetime) -> None:
    """Record when the resident last wrote on this channel (the WhatsApp 24-hour window)."""
    await session.execute(
        update(_addresses)
        .where(_addresses.c.channel == channel, _addresses.c.address == address)
        .values(last_inbound_at=at)
    )
