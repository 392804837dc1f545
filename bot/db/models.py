"""citybot's tables: residents, what they said, what they reported, and the filing outbox.

Every table hangs off ``bot.db.base.Base`` so Alembic sees it; the initial migration in
``bot/migrations/versions`` creates exactly these. Datetimes are timezone-aware UTC everywhere
(``UtcDateTime``); JSON is JSON on SQLite and JSONB on PostgreSQL.

Example::

    async with sessionmaker() as session, session.begin():
        session.add(Resident(locale="zu"))
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db.base import Base
from bot.db.types import JsonDocument, UtcDateTime, utc_now

__all__ = [
    "AuditLog",
    "ConversationState",
    "HandoffRequest",
    "MessageLog",
    "ProcessedMessage",
    "Resident",
    "ResidentAddress",
    "Submission",
    "SubmissionOutbox",
    "Subscription",
]


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


class MessageLog(Base):
    """Every message in and out. ``text`` is cleared after the retention period and on erasure."""

    __tablename__ = "message_log"
    __table_args__ = (
        Index("ix_message_log_provider", "channel", "provider_message_id"),
        Index("ix_message_log_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(255))
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="SET NULL"), index=True
    )
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    # "text", "button", "location", "media" in; "reply", "status_update", "broadcast" out.
    kind: Mapped[str] = mapped_column(String(32), default="text")
    text: Mapped[str | None] = mapped_column(Text)
    # Delivery receipts: queued, sent, delivered, read, failed, unreachable.
    status: Mapped[str | None] = mapped_column(String(32))
    status_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class Submission(Base):
    """A completed form, stored before the resident is told "received". Filed from the outbox."""

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_status", "status"),)

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
    ward: Mapped[str | None] = mapped_column(String(32), index=True)
    # informal_settlement | formal | unknown: the ground for equity analytics.
    area_type: Mapped[str | None] = mapped_column(String(32))
    address_string: Mapped[str | None] = mapped_column(Text)
    # "pending" until the filer has it accepted by the city's back end.
    status: Mapped[str] = mapped_column(String(32), default="pending")
    service_request_id: Mapped[str | None] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, onupdate=utc_now)
    # When the personal answers were removed: the form's retention ran out, or the resident
    # asked. The report itself (place, ward, what and when) stays for the city's statistics.
    personal_removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


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


class ProcessedMessage(Base):
    """The SQL dedupe store: a provider message id seen once is never processed again."""

    __tablename__ = "processed_messages"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider_message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)


class ConversationState(Base):
    """Where each conversation is (``SqlStateStore``); the key is ``ConversationKey.storage_key``."""

    __tablename__ = "conversation_states"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class HandoffRequest(Base):
    """A resident asked for a person. Support takeover (a later issue) works these off."""

    __tablename__ = "handoff_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AuditLog(Base):
    """Who did what to which record: erasures, opt-outs, staff actions. No personal data in it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    # "resident:12", "staff:alice", "system".
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
