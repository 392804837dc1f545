"""Residents and how to reach them on each channel.

A resident is a person, whichever channels they use; personal data hangs off the row and is
erasable, while the row itself stays so anonymous counts stay right.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.base import Base
from storage.types import UtcDateTime, utc_now

__all__ = ["Resident", "ResidentAddress"]


class Resident(Base):
    """A person, whichever channels they use. Personal data hangs off it and is erasable."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    locale: Mapped[str] = mapped_column(String(8), default="en")
    # POPIA: when they agreed to the privacy notice, or declined it (both null: not asked yet).
    consent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    consent_declined_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Nothing is sent to a resident while this is set (STOP and its equivalents).
    opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    # "Delete my data": personal data removed; the row stays so anonymous counts stay right.
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    addresses: Mapped[list[ResidentAddress]] = relationship(back_populates="resident")


class ResidentAddress(Base):
    """How to reach a resident on one channel: a phone number, a Telegram chat id, a web session."""

    __tablename__ = "resident_addresses"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(255))
    # WhatsApp lets the bot write freely only within 24 hours of the resident's last message.
    last_inbound_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The provider said the resident cannot be reached (blocked the bot, Twilio 21610...).
    unreachable_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)

    resident: Mapped[Resident] = relationship(back_populates="addresses")
