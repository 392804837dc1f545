"""Answers that are only ever counted: the optional questions after a report (gender, and with
its own consent, disability, which is special personal information under POPIA).

Kept apart from ``submissions`` on purpose: the report's answers are read by staff, filed with the
city's back end and exported; these never are. The row names its report only so the open data and
dashboard can count reports by group, and its resident only so DELETE MY DATA removes it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import UtcDateTime, utc_now

__all__ = ["AggregateAnswer"]


class AggregateAnswer(Base):
    """One answer to an ``aggregate_only`` step of a form, for counting by group only."""

    __tablename__ = "aggregate_answers"
    __table_args__ = (
        # One answer per question per report: a provider's retry never counts twice.
        Index("ux_aggregate_answers_submission_step", "submission_id", "step_id", unique=True),
        Index("ix_aggregate_answers_form_step", "form_id", "step_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    form_id: Mapped[str] = mapped_column(String(64))
    step_id: Mapped[str] = mapped_column(String(64))
    # The option id ("woman", "prefer_not"), "yes"/"no", or a number as text: never free text.
    value: Mapped[str] = mapped_column(String(64))
    # Special personal information: counted with the larger small-group threshold.
    special: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
