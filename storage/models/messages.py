"""What was said, what was processed, and where each conversation is.

``message_log`` keeps every message in and out (texts cleared after the retention period and on
erasure); ``processed_messages`` is the SQL dedupe store; ``conversation_states`` the SQL state
store (``conversations.state_store.SqlStateStore``); ``held_messages`` the messages a resident
sent faster than the rate limit, kept until their turn (``conversations.held_inbound``);
``pending_replies`` the replies committed with their turns where there is no Redis, kept until
sent (``notifier.reply_outbox``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import JsonDocument, UtcDateTime, utc_now

__all__ = ["ConversationState", "HeldMessage", "MessageLog", "PendingReply", "ProcessedMessage"]


class MessageLog(Base):
    """Every message in and out. ``text`` is cleared after the retention period and on erasure.

    On PostgreSQL the table is partitioned by month on ``created_at`` (``storage.partitions``,
    migration 0026) and its primary key there is ``(id, created_at)``, as PostgreSQL requires of
    a partitioned table; ``id`` alone stays unique (one sequence for every partition) and is what
    the models know. Nothing relies on a unique constraint of this table: a provider's retry is
    refused by ``processed_messages`` (the dedupe store), and no foreign key points here.
    """

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


class ProcessedMessage(Base):
    """The SQL dedupe store: a provider message id seen once is never processed again."""

    __tablename__ = "processed_messages"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider_message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)


class HeldMessage(Base):
    """A message over its resident's rate limit: accepted, kept, and run once they slow down.

    ``message`` is the parsed message (``conversations.held_inbound`` reads and writes it);
    ``claimed_until`` is the lease of the process running it, so a killed one's work is taken
    over. One row per provider message, so a provider's retry is not held twice.
    """

    __tablename__ = "held_messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id"),
        Index("ix_held_messages_conversation", "channel", "address", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(255))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    message: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    held_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PendingReply(Base):
    """A reply committed with its turn (no Redis), deleted once sent or finally failed.

    ``entry`` is the rendered reply in the reply queue's format (``notifier.reply_queue``); a
    process killed before sending leaves it here, and the next start sends it.
    """

    __tablename__ = "pending_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(255))
    entry: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class ConversationState(Base):
    """Where each conversation is (``SqlStateStore``); the key is ``ConversationKey.storage_key``."""

    __tablename__ = "conversation_states"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class UssdSession(Base):
    """Where a resident is in a USSD dialogue, by phone number (``conversations.ussd_sessions``).

    The gateway re-sends the whole input of a session with every request, so the dialogue keeps
    how many parts it has already taken (``consumed``), the screen it last showed (what each
    number on it means) and that screen's text, answered again to a gateway that retries. It is
    kept by phone, not by session, so a resident cut off and dialling again within minutes finds
    their place (``updated_at`` says how long ago).
    """

    __tablename__ = "ussd_sessions"

    phone: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128))
    consumed: Mapped[int] = mapped_column(Integer, default=0)
    screen: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    answer: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
