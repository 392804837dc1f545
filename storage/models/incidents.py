"""Known incidents: what the city already knows is wrong in an area (a burst main, an outage).

An ``Incident`` is declared by staff or another city system: the services it concerns (the
report forms a resident would use, e.g. ``no_water``), the wards affected, when it started and
should end, and the message residents get, per language. Each declaration, change and end is
told to the area's subscribers as a broadcast (``Broadcast.incident_id``); residents who start
a report it explains are told it is known, and ``duplicates_avoided`` counts those who then did
not file.

Example::

    async with sessionmaker() as session, session.begin():
        session.add(Incident(title="Burst main", services=["no_water"], wards=["9"], ...))
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import JsonDocument, UtcDateTime, utc_now

__all__ = ["Incident"]


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"))
    title: Mapped[str] = mapped_column(String(120))
    # Form ids of the reports this explains ("no_water", "water_leak").
    services: Mapped[list[str]] = mapped_column(JsonDocument)
    topic: Mapped[str] = mapped_column(String(32))
    wards: Mapped[list[str]] = mapped_column(JsonDocument)
    # What residents are told, per language ({"en": ...} at least).
    texts: Mapped[dict[str, str]] = mapped_column(JsonDocument)
    urgency: Mapped[str] = mapped_column(String(16), default="routine")
    # "open" until "resolved" (fixed) or "cancelled" (declared in error).
    status: Mapped[str] = mapped_column(String(16), default="open")
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    expected_end_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    duplicates_avoided: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
