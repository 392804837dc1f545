"""Residents' subscriptions to news for their area."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import UtcDateTime, utc_now

__all__ = ["Subscription"]


class Subscription(Base):
    """A resident wants news for a ward."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("resident_id", "ward"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    ward: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
