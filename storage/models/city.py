"""The city back end's tables: the built-in Open311 server's requests, the filer's attempts, and
what the status poller learned.

``open311_requests`` stands in for a city's system, so it is kept apart from the bot's
submissions: the bot files into it over HTTP exactly as it would file to a real city.
``filing_attempts`` is the filer's log: every try at filing a submission and its reason.
``tracked_requests`` holds one row per filed submission with what the city last said and the
request's milestones (acknowledged, closed); ``request_status_changes`` keeps every change with
its timestamps and whether the resident was told (``notifier.status_notices`` tells them). With
the submission's ``created_at``, ward and area type, this is the ground for equity analytics.

Example::

    row = Open311Request(token="9f2c...", service_code="ROADS-POTHOLE", service_name="Pothole", ...)
    row.service_request_id  # "1042"
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import JsonDocument, UtcDateTime, utc_now

__all__ = ["FilingAttempt", "Open311Request", "RequestStatusChange", "TrackedRequest"]


class Open311Request(Base):
    __tablename__ = "open311_requests"
    __table_args__ = (
        Index("ix_open311_requests_service_requested", "service_code", "requested_datetime"),
        Index("ix_open311_requests_status_requested", "status", "requested_datetime"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    service_code: Mapped[str] = mapped_column(String(100))
    service_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    lat: Mapped[float | None] = mapped_column(Float)
    long: Mapped[float | None] = mapped_column(Float)
    address_string: Mapped[str | None] = mapped_column(Text)
    address_id: Mapped[str | None] = mapped_column(String(100))
    media_url: Mapped[str | None] = mapped_column(Text)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    email: Mapped[str | None] = mapped_column(String(320))
    device_id: Mapped[str | None] = mapped_column(String(200))
    account_id: Mapped[str | None] = mapped_column(String(200))
    # The spec knows two statuses, open and closed; staff explain the rest in status_notes.
    status: Mapped[str] = mapped_column(String(20), default="open")
    status_notes: Mapped[str | None] = mapped_column(Text)
    agency_responsible: Mapped[str | None] = mapped_column(String(200))
    service_notice: Mapped[str | None] = mapped_column(Text)
    requested_datetime: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_datetime: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    expected_datetime: Mapped[datetime | None] = mapped_column(UtcDateTime())

    @property
    def service_request_id(self) -> str:
        return str(self.id)


class FilingAttempt(Base):
    """One try at filing a submission with the city, and how it ended (the filer's log).

    A row is written as ``in_flight`` *before* the POST and finished after it, so an attempt cut
    short by a crash stays visible: the next attempt then looks for the report on the back end
    (by its reference) before posting again.
    """

    __tablename__ = "filing_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # in_flight, filed, found (already on the back end), token (id to come), retry, rejected
    outcome: Mapped[str] = mapped_column(String(20), default="in_flight")
    reason: Mapped[str | None] = mapped_column(Text)
    service_request_id: Mapped[str | None] = mapped_column(String(128))
    token: Mapped[str | None] = mapped_column(String(128))


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
    __table_args__ = (
        Index("ix_request_status_changes_pending", "notify_state", "id"),
        # The day's status changes (the daily digest, notifier.digests).
        Index("ix_request_status_changes_observed_at", "observed_at"),
    )

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
