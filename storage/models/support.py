"""Support takeover: a resident's conversation handed to a person, and what was said in it.

A ``SupportTicket`` is opened when a resident asks for a person (or, in time, when the bot fails
or a form says so). It waits in the queue (``waiting``), is claimed by one agent (``held``: the
bot is silent and the resident's messages go to the agent) and ends ``closed`` with an outcome
(handed back to the bot, resolved, the resident opted out). ``SupportMessage`` rows are its
transcript: the resident's messages, the agent's replies, internal notes never sent, and what
the system did.

Example::

    async with sessionmaker() as session, session.begin():
        session.add(SupportTicket(resident_id=7, channel="sms", address="+27...", locale="zu"))
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import UtcDateTime, utc_now

__all__ = ["SupportMessage", "SupportTicket"]


class SupportTicket(Base):
    __tablename__ = "support_tickets"
    __table_args__ = (
        # The queue: open tickets by priority, then by how long they have waited.
        Index("ix_support_tickets_queue", "state", "priority", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    # Where the conversation is (personal data: cleared by erasure, masked to staff).
    address: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(8), default="en")
    # Why a person is needed: "asked" (AGENT), "callback" (AGENT by USSD), "misunderstood",
    # "form", "staff".
    reason: Mapped[str] = mapped_column(String(16), default="asked")
    # The form the resident was in, if any (what the agent can handle first).
    topic: Mapped[str | None] = mapped_column(String(64))
    # The team it is for (a language or a department, e.g. "zu", "electricity"); None: anyone.
    team: Mapped[str | None] = mapped_column(String(32), index=True)
    # The resident's ward, where known, for ward-scoped staff.
    ward: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    # When it last entered the queue (opened, or put back): the unclaimed timeout counts from it.
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The first claim (how long the resident waited), and when the present holder took it
    # (what the agent-silent timeout counts from).
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    held_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_resident_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_agent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    outcome: Mapped[str | None] = mapped_column(String(32))
    # When the resident was told nobody is free yet (the unclaimed timeout: said once).
    unclaimed_told_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The expected wait the resident was last told, in minutes (None: told none): they are told
    # again when it grows.
    told_wait_minutes: Mapped[int | None] = mapped_column(Integer)


class SupportMessage(Base):
    __tablename__ = "support_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("support_tickets.id", ondelete="CASCADE"), index=True
    )
    # "resident", "agent" (sent), "note" (never sent), "system" (what happened).
    direction: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    # Cleared for a resident's own words when they erase their data.
    text: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
