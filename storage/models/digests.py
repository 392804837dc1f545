"""The daily digest of reports: one row per (resident, alert, day) that had something to say.

A resident who follows an area with the ``reports`` topic gets, once a day, the new reports and
status changes there (``notifier.digests``). ``report_digests`` holds each digest as written for
them: its unique (resident, alert label, day) is what makes it go at most once, whatever
crashes or however many workers run; a day with nothing in the area writes no row. States, as a
broadcast delivery's: ``queued``, ``claimed`` (a sender took it; queued again if that sender
dies), ``sending`` (with the provider), ``sent``, ``failed``, ``unreachable``, ``skipped``
(opted out or erased before it went, or the next day's digest came first), ``unknown`` (the
sender died mid-call: it may have gone, so it never goes again).

``digest_runs`` is a day's fan-out: how far through the residents (by id) it has written, so
several workers share it and a restart carries on there.

Example::

    session.add(ReportDigest(resident_id=7, label="Khayelitsha", day=date(2026, 12, 4),
                             channel="sms", locale="zu", text="..."))
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import UtcDateTime, utc_now

__all__ = ["DigestRun", "ReportDigest"]


class DigestRun(Base):
    __tablename__ = "digest_runs"

    # The local date whose digest this is (it covers the day up to the digest time).
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    fanned_out_to: Mapped[int] = mapped_column(Integer, default=0)
    fanned_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    digests: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class ReportDigest(Base):
    __tablename__ = "report_digests"
    __table_args__ = (
        UniqueConstraint("resident_id", "label", "day"),
        # Senders take the next queued digests in id order.
        Index("ix_report_digests_due", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key, as broadcast deliveries: rows come only from a fan-out of existing
    # residents, who are never deleted (erasure keeps the row).
    resident_id: Mapped[int] = mapped_column(Integer, index=True)
    # The alert's label ("Khayelitsha", "ward 94", "pin -34.0363,18.6776").
    label: Mapped[str] = mapped_column(String(120))
    day: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8))
    # The message as the resident gets it (references and counts only: no personal data).
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
