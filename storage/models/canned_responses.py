"""Canned responses: what support agents often say, written once per language by a supervisor.

One row is one text in one language; rows that say the same thing in different languages share
a ``name`` ("greeting", "water_outage"). The console's reply box offers them by name and
inserts the text in the resident's language (English when that language has none).

Example::

    session.add(CannedResponse(name="greeting", locale="zu", text="Sawubona, ngingakusiza?"))
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import UtcDateTime, utc_now

__all__ = ["CannedResponse"]


class CannedResponse(Base):
    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("name", "locale"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, onupdate=utc_now)
    # Who wrote the text last (an audit actor, "staff:7").
    updated_by: Mapped[str] = mapped_column(String(64))
