"""The message log's record of what was sent: one row per provider message, kept up to date by
delivery receipts.

A reply is logged after it is sent, with the provider's message id; receipts (Twilio's status
callbacks) then move the row forward: queued, sent, delivered, read, or failed. A provider that
says the resident cannot be reached marks the address unreachable, and Twilio's 21610 (the
resident texted STOP to the carrier) is an opt-out everywhere.

Example::

    await record_deliveries(sessions, [(message, delivery)])   # after sending one reply
    await apply_receipt(sessions, parse_receipt(request))      # POST /webhooks/twilio/status
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from channels.types import Delivery, DeliveryReceipt, DeliveryStatus, OutboundMessage
from storage.models import MessageLog, Resident, ResidentAddress

__all__ = [
    "Sent",
    "apply_receipt",
    "note_unreachable",
    "record_deliveries",
    "write_deliveries",
]

# Twilio's error for a number that texted STOP to the carrier: honoured as an opt-out everywhere.
_CARRIER_OPT_OUT = "21610"

# The messages of one reply as sent, each with what the provider said.
Sent = Sequence[tuple[OutboundMessage, Delivery]]
Sessions = async_sessionmaker[AsyncSession]


async def record_deliveries(sessions: Sessions, sent: Sent) -> None:
    """Log the messages of one reply in one transaction (one commit per reply, not per SMS)."""
    if not sent:
        return
    async with sessions() as db, db.begin():
        await write_deliveries(db, [sent])


async def write_deliveries(
    db: AsyncSession | AsyncConnection, replies: Sequence[Sent]
) -> list[None]:
    """Log the messages of several replies in the caller's transaction (one multi-row insert).

    The webhooks hand it to a ``SqlBatcher``: during a flood the replies sent while one batch is
    in the database share the next commit, instead of one commit per reply.
    """
    now = datetime.now(UTC)
    rows = [
        {
            "direction": "out",
            "channel": message.channel,
            "address": message.address,
            "provider_message_id": delivery.provider_message_id,
            "kind": message.purpose,
            # The turn loop already logged what was said; this row tracks one provider
            # message and its receipts, so the text (personal data) is not stored twice.
            "text": None,
            "status": delivery.status.value,
            "status_updated_at": now,
            "created_at": now,
        }
        for sent in replies
        for message, delivery in sent
    ]
    if rows:
        await db.execute(insert(MessageLog), rows)
    for sent in replies:
        for message, delivery in sent:
            await note_unreachable(
                db, message.channel, message.address, delivery.status, delivery.error_code
            )
    return [None] * len(replies)


async def apply_receipt(sessions: Sessions, receipt: DeliveryReceipt) -> bool:
    """Update the logged message a receipt is about; False if no such message was logged.

    Receipts arrive out of order (``delivered`` before ``sent`` happens): a later state never
    goes back to an earlier one.
    """
    now = datetime.now(UTC)
    async with sessions() as db, db.begin():
        row = await db.scalar(
            select(MessageLog)
            .where(
                MessageLog.channel == receipt.channel,
                MessageLog.provider_message_id == receipt.provider_message_id,
                MessageLog.direction == "out",
            )
            .limit(1)
        )
        if row is not None and _rank(receipt.status.value) >= _rank(row.status):
            row.status = receipt.status.value
            row.status_updated_at = now
        await note_unreachable(
            db, receipt.channel, receipt.address, receipt.status, receipt.error_code
        )
    return row is not None


_ORDER = ["queued", "sent", "delivered", "read"]


def _rank(status: str | None) -> int:
    # Failures are final whenever they come; unknown or missing statuses rank lowest.
    if status in ("failed", "unreachable"):
        return len(_ORDER)
    return _ORDER.index(status) if status in _ORDER else -1


async def note_unreachable(
    db: AsyncSession | AsyncConnection,
    channel: str,
    address: str,
    status: DeliveryStatus,
    error_code: str | None,
) -> None:
    """Where the provider says it cannot reach this address, mark it so; where the resident
    opted out at the carrier (Twilio 21610), opt them out everywhere. Else nothing."""
    if status is not DeliveryStatus.UNREACHABLE:
        return
    now = datetime.now(UTC)
    await db.execute(
        update(ResidentAddress)
        .where(ResidentAddress.channel == channel, ResidentAddress.address == address)
        .values(unreachable_at=now)
    )
    if error_code == _CARRIER_OPT_OUT:
        resident_ids = select(ResidentAddress.resident_id).where(
            ResidentAddress.channel == channel, ResidentAddress.address == address
        )
        await db.execute(
            update(Resident)
            .where(Resident.id.in_(resident_ids), Resident.opted_out_at.is_(None))
            .values(opted_out_at=now)
        )
