"""Reports: a completed form, stored before the resident is told "received", and its filing outbox.

A ``submissions`` row and its ``submission_outbox`` row are written in one transaction by the
turn loop; ``city.filer`` files due outbox rows with the city's back end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from storage.base import Base
from storage.types import JsonDocument, UtcDateTime, utc_now

__all__ = ["Submission", "SubmissionOutbox"]


class Submission(Base):
    """A completed form, stored before the resident is told "received". Filed from the outbox."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_status", "status"),
        # By time received: the open data's date filters, the rollup's periods, the daily digest.
        Index("ix_submissions_created_at", "created_at"),
        Index("ix_submissions_demo", "demo"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "CT-" and 6 characters from an alphabet without look-alikes (see conversations.references).
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="SET NULL"), index=True
    )
    # The channel it was reported on: status updates go back there.
    channel: Mapped[str | None] = mapped_column(String(32))
    form_id: Mapped[str] = mapped_column(String(64))
    form_version: Mapped[int] = mapped_column(Integer)
    service_code: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    answers: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # The main ward (of the pin, or of a typed place's representative point).
    ward: Mapped[str | None] = mapped_column(String(32), index=True)
    # Every ward the place reaches into, main ward first (["91", "18", "87"] for Khayelitsha);
    # [] where no ward is known. NULL on reports stored before wards were kept.
    wards: Mapped[list[str] | None] = mapped_column(JsonDocument)
    # informal_settlement | mixed | formal | unknown: the ground for equity analytics ("mixed": a
    # suburb or town holding informal settlements, the resident may live in one or not).
    area_type: Mapped[str | None] = mapped_column(String(32))
    # How closely the place is known: pin (the resident's GPS) | point (the city's coordinates) |
    # street | settlement | suburb; NULL where nothing placed it.
    precision: Mapped[str | None] = mapped_column(String(16))
    # The suburb (or town) named, or the one the informal settlement lies in; NULL where the
    # data cannot say (a pin outside every settlement: the sources hold no suburb shapes).
    suburb: Mapped[str | None] = mapped_column(String(120))
    # What placed the request: pin | place (a typed place the gazetteer matched) | city (the
    # back end's coordinates) | text (`citybot data backfill` matched stored place text) | point
    # (a stored point whose answer was erased) | none (nothing could: ward and suburb NULL, area
    # type "unknown"). NULL on rows stored before requests were placed, until `citybot data
    # backfill` places them.
    place_source: Mapped[str | None] = mapped_column(String(16))
    address_string: Mapped[str | None] = mapped_column(Text)
    # "pending" until the filer has it accepted by the city's back end.
    status: Mapped[str] = mapped_column(String(32), default="pending")
    service_request_id: Mapped[str | None] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, onupdate=utc_now)
    # When the personal answers were removed: the form's retention ran out, or the resident
    # asked. The report itself (place, ward, what and when) stays for the city's statistics.
    personal_removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Synthetic, from ``citybot demo seed``: published with demo=true, removed by ``demo clear``.
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class SubmissionOutbox(Base):
    """One row per submission to file, written in the same transaction as the submission."""

    __tablename__ = "submission_outbox"
    __table_args__ = (Index("ix_submission_outbox_due", "done_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
