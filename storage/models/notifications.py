"""The notification outbox: every message the bot starts, stored before anyone tries to send it.

The filer ("your report is with the city") and the status poller ("closed") write a
``resident_notifications`` row in the same transaction that records what the message is about;
``notifier.dispatcher.NotificationDispatcher`` sends due rows and records how it went. A crash
between the two loses nothing: the row is still pending.

States: ``pending`` (to send, at ``next_attempt_at``), ``sent``, ``failed`` (gave up, with
``last_error``), ``skipped`` (opted out, erased, or superseded by a later update).

Example::

    async with sessionmaker() as session, session.begin():
        submission.status = "filed"
        enqueue(session, message, submission_id=submission.id, now=now)  # notifier.outbox
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import JsonDocument, UtcDateTime, utc_now

__all__ = ["ResidentNotification"]


class ResidentNotification(Base):
    """One message to one resident, on one channel, sent at most once by the dispatcher."""

    __tablename__ = "resident_notifications"
    __table_args__ = (
        Index("ix_resident_notifications_due", "state", "next_attempt_at"),
        Index("ix_resident_notifications_submission", "submission_id", "purpose"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8))
    # "report_filed" or "status_update": WhatsApp picks its template by this outside 24 hours.
    purpose: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(16))
    # Cleared once the row is settled as sent or skipped: what was sent is in the message log,
    # which erasure scrubs and retention purges; the outbox keeps only what is still to say.
    text: Mapped[str] = mapped_column(Text)
    template_variables: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    # A dispatcher holds the row until then; after it, the row is free for another (a crash).
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
