"""Early warning: the detector's counters, and the incidents it suggests to staff.

The detector (``notifier.burst_detector``, run by the ``early_warning`` worker through
``notifier.incident_suggestions``) keeps its state here so a restarted worker goes on where it
stopped: ``BurstDetectorState`` is one row (the last report read, the seasonal shapes, the open
bursts), ``BurstCounter`` one row per service and area it has seen (the weighted count and the
last window's reports). A burst becomes an ``IncidentSuggestion`` with the reports behind it
(``incident_suggestion_reports``); staff confirm it (it becomes an ``Incident``) or dismiss it
with a reason.

Example::

    async with sessionmaker() as session, session.begin():
        pending = await session.scalars(
            select(IncidentSuggestion).where(IncidentSuggestion.status == "suggested")
        )
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import JsonDocument, UtcDateTime, utc_now

__all__ = [
    "BurstCounter",
    "BurstDetectorState",
    "IncidentSuggestion",
    "incident_suggestion_reports",
]


class BurstDetectorState(Base):
    """The detector's one row (``id`` 1)."""

    __tablename__ = "burst_detector_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class BurstCounter(Base):
    """One service in one area ("no_water|ward:9"): ``notifier.burst_detector.Cell``."""

    __tablename__ = "burst_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class IncidentSuggestion(Base):
    __tablename__ = "incident_suggestions"
    __table_args__ = (Index("ix_incident_suggestions_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The detector's number for the burst: the worker finds the row again when the burst grows.
    serial: Mapped[int] = mapped_column(Integer, unique=True)
    # The report form ("no_water"), as an incident's services are.
    service: Mapped[str] = mapped_column(String(64))
    # Where it fired first: "ward:9", "suburb:Khayelitsha", "settlement:Makhaza", "grid:r:c".
    area: Mapped[str] = mapped_column(String(160))
    # The wards of the reports behind it (what a ward-scoped account may see, and the
    # confirmed incident's wards unless staff change them).
    wards: Mapped[list[str]] = mapped_column(JsonDocument)
    # suggested | confirmed | dismissed
    status: Mapped[str] = mapped_column(String(16), default="suggested")
    # At the firing: distinct residents in the window, and how many were usual then.
    window_count: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    first_report_at: Mapped[datetime] = mapped_column(UtcDateTime())
    latest_report_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    # Why it was dismissed (staff's words; audited with the dismissal).
    reason: Mapped[str | None] = mapped_column(Text)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)


# The reports behind a suggestion (and so behind the incident it became).
incident_suggestion_reports = Table(
    "incident_suggestion_reports",
    Base.metadata,
    Column(
        "suggestion_id",
        ForeignKey("incident_suggestions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "submission_id",
        ForeignKey("submissions.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)
