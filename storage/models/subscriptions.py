"""Residents' subscriptions to news for their area.

One alert a resident made ("SUBSCRIBE Khayelitsha", a pin, "alerts ward 94") is the rows that
share its ``label``: one per ward it reaches (Khayelitsha reaches ten), so a broadcast to some
wards finds its residents with one indexed join. ``topics`` is the alert's topics as
``",water,roads,"`` (``",all,"`` for everything), matched with LIKE on both databases; a pin
keeps its point and radius.

Example::

    session.add(Subscription(resident_id=7, label="Khayelitsha", ward="94", topics=",all,"))
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import UtcDateTime, utc_now

__all__ = ["Subscription"]


class Subscription(Base):
    """One ward of a resident's alert."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("resident_id", "label", "ward"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    ward: Mapped[str] = mapped_column(String(32), index=True)
    # What the resident named ("Khayelitsha", "ward 94", "your pin"): MY ALERTS lists these.
    label: Mapped[str] = mapped_column(String(120), default="")
    topics: Mapped[str] = mapped_column(String(80), default=",all,")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
