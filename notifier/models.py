"""What the status poller remembers: each filed request's last known state and its history.

``tracked_requests`` holds one row per filed submission with what the city last said, and the
request's milestones (acknowledged, closed); ``request_status_changes`` keeps every change with
its timestamps and whether the resident was told. With the submission's ``created_at``, ward and
area type, and the filer's ``filing_attempts``, this is the ground for equity analytics: how
long each step takes, per ward and area type.

Example::

    change = RequestStatusChange(submission_id=7, service_request_id="1042", status="closed", ...)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import UtcDateTime, utc_now

__all__ = ["RequestStatusChange", "TrackedRequest"]


class TrackedRequest(Base):
    __tablename__ = "tracked_requests"
    __table_args__ = (Index("ix_tracked_requests_open", "closed_at", "submission_id"),)

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    service_request_id: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(32))
    status_notes: Mapped[str | None] = mapped_column(Text)
    expected_datetime: Mapped[datetime | None] = mapped_column(UtcDateTime())
    city_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When the city's back end first showed the request (after filing).
    acknowledged_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When the city last answered about the request, to within the poller's
    # ``polled_at_resolution_seconds`` (an hour): an unchanged request's stamp is refreshed only
    # once it is that old, so that a cycle writes only what changed (see
    # ``notifier.status_poller._stamp_polled``).
    last_polled_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class RequestStatusChange(Base):
    __tablename__ = "request_status_changes"
    __table_args__ = (Index("ix_request_status_changes_pending", "notify_state", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    service_request_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))
    status_notes: Mapped[str | None] = mapped_column(Text)
    expected_datetime: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The city's updated_datetime, and when citybot noticed the change.
    city_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    # pending (to tell), queued (in resident_notifications; the dispatcher sends it), superseded
    # (a later change is told instead), opted_out, unreachable (no channel or resident),
    # acknowledged (the first sighting, which the "filed" message already covered); rows from
    # before the notification outbox may say "sent" or "failed"
    notify_state: Mapped[str] = mapped_column(String(20), default="pending")
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
