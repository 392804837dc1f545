"""Official broadcasts and who each one goes to.

A ``Broadcast`` is what an official writes: a text per language, the areas it is for, a topic,
the channels, how urgent it is, when to send and when it stops mattering. Its life::

    draft ──send──► awaiting_approval ──approve──► scheduled ──(send_at)──► sending ──► sent
                    (emergency, city-wide or large)  ▲                         │
      └──────────────send (otherwise)───────────────┘     cancel at any point ► cancelled
                                                           expires_at passed ► expired

A ``BroadcastDelivery`` is one resident of the audience, written when the broadcast fans out.
Its unique (broadcast, resident, created_at) is what makes a broadcast reach a resident at most
once, whatever crashes or is resent. ``created_at`` is when the broadcast's fan-out began
(``Broadcast.deliveries_at``, set once by its first range), copied onto every row: the same for
all rows of one broadcast, so the triple is as unique as the pair. It is there because on
PostgreSQL the table is partitioned by month on it (``storage.partitions``, migration
``0027_partitioned_deliveries``) and PostgreSQL wants the partition key in every unique
constraint; one broadcast's rows live in one partition, so a query naming the broadcast and its
``deliveries_at`` reads one partition. Not the broadcast's own creation time: one drafted or
scheduled months ahead would put its rows in a month retention is about to drop.

States: ``queued`` (to send), ``sending`` (a sender holds it and is talking to the provider),
``sent``, ``failed`` (the provider refused it; "resend to failed" queues it again),
``unreachable`` (no address the provider can reach), ``skipped`` (opted out or erased before
their turn came, the broadcast cancelled or expired), ``unknown`` (the sender died mid-send: it
may have gone, so it is never sent again).

Example::

    async with sessionmaker() as session, session.begin():
        session.add(Broadcast(author_id=3, title="Water off in ward 9", texts={"en": "..."},
                              target={"wards": ["9"]}, topic="water", channels=["sms"]))
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import JsonDocument, UtcDateTime, utc_now

__all__ = ["Broadcast", "BroadcastDelivery"]


class Broadcast(Base):
    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_state_send_at", "state", "send_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"))
    title: Mapped[str] = mapped_column(String(120))
    # {"en": "...", "zu": "..."}; English is always there and stands in for a missing language.
    texts: Mapped[dict[str, str]] = mapped_column(JsonDocument)
    # {"wards": [...], "places": [...], "point": {"lat", "lon", "radius_m"}, "everyone": bool}
    target: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    topic: Mapped[str] = mapped_column(String(32))
    channels: Mapped[list[str]] = mapped_column(JsonDocument)
    # "emergency" goes out in quiet hours; "routine" waits for the morning.
    urgency: Mapped[str] = mapped_column(String(16), default="routine")
    # WhatsApp's approved template for residents outside its 24-hour window (None: skip them).
    whatsapp_template: Mapped[str | None] = mapped_column(String(100))
    send_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(24), default="draft")
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Fan-out goes in resident id order; the last id written lets a restart carry on there.
    fanned_out_to: Mapped[int] = mapped_column(Integer, default=0)
    fanned_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When the fan-out began: the created_at (partition key) of every one of its delivery rows.
    deliveries_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    # Its report (``notifier.broadcasts.Report`` as a document), written by retention just
    # before the month of its delivery rows is dropped, so the console still shows its counts.
    report_summary: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    # The known incident this tells residents about (declared, changed or ended), if any.
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class BroadcastDelivery(Base):
    __tablename__ = "broadcast_deliveries"
    __table_args__ = (
        # With the partition key: still one row per (broadcast, resident), see above.
        UniqueConstraint("broadcast_id", "resident_id", "created_at"),
        # Senders take the next queued rows of a broadcast in id order.
        Index("ix_broadcast_deliveries_due", "state", "broadcast_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign keys on this table, on purpose: a city-wide broadcast writes a million rows,
    # and PostgreSQL's two foreign-key checks per row were half the fan-out's time (measured
    # with bench/broadcast.py). Rows come only from a broadcast's fan-out (an INSERT ... SELECT
    # of existing residents), and neither broadcasts nor residents are ever deleted (erasure
    # keeps the resident row), so nothing can dangle.
    broadcast_id: Mapped[int] = mapped_column(Integer)
    resident_id: Mapped[int] = mapped_column(Integer, index=True)
    channel: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8))
    # The resident's main ward (for the report by area); None where it is not known.
    ward: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # A sender holds a "sending" row until then; a row still held after it died is "unknown".
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    resends: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    # Its broadcast's deliveries_at (the same on all its rows): the partition key.
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
