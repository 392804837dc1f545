"""``SendToResident`` for the running app: a message the bot starts, on the resident's channel.

The filer ("your report is with the city") and the status poller ("closed") decide what to say;
``ResidentDelivery`` finds where to say it and says it:

1. the resident must still be reachable: not opted out, not erased (checked again here, since
   they may have sent STOP after the message was decided);
2. their address on the channel they reported on (the one they wrote from last, if several;
   none the provider called unreachable);
3. the channel renders the text as it renders any notice (SMS segments, WhatsApp length) and
   sends it paced (in the pacer's bulk lane, so replies to residents go first; a purpose in
   ``reply_purposes``, a support agent's answer to a resident who is waiting for it, goes in the
   reply lane like the bot's own answers) and retried
   (``send_with_retries``). WhatsApp outside its 24-hour window sends
   the approved template configured for the message's ``purpose`` (the channel decides, from
   ``resident_addresses.last_inbound_at``); the web chat cannot push, so the message waits in the
   message log for the page, which polls ``GET /webchat/messages?after=ID``;
4. every message is written to the message log with its text, its purpose as the kind and the
   provider's id, so delivery receipts update it and the web chat can show it.

A message that was not sent raises (``notifier.ports``): ``ResidentGone`` for an opted-out or
erased resident, ``Undeliverable`` where trying again cannot help (no reachable address, the
provider says the resident cannot be reached), ``NotDelivered`` otherwise (the provider is down,
the channel is not configured); the dispatcher settles or retries the notification accordingly.

Example::

    deliver = ResidentDelivery(sessionmaker, services.channels)
    dispatcher = NotificationDispatcher(sessionmaker, send=deliver)
    await deliver(ResidentMessage(resident_id=7, channel="sms", locale="zu", text="...",
                                  purpose="status_update", reference="CT-7KQ4XM"))
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.base import BaseChannel
from channels.pacing import Lane
from channels.retrying import send_with_retries
from channels.types import Delivery, DeliveryStatus, OutboundMessage
from forms_runtime.effects import Notice
from notifier.delivery_log import note_unreachable
from notifier.ports import NotDelivered, ResidentGone, ResidentMessage, Undeliverable
from storage.models import MessageLog, Resident, ResidentAddress

__all__ = ["NotDelivered", "ResidentDelivery", "ResidentGone", "Undeliverable"]

_DELIVERED = (DeliveryStatus.SENT, DeliveryStatus.QUEUED, DeliveryStatus.DELIVERED)


class ResidentDelivery:
    """Deliver ``ResidentMessage``s through ``channels`` (by name), logging each one.

    ``count_sent`` is told of each part a provider took (for ``citybot_messages_out``);
    ``reply_purposes`` are the purposes that answer a resident in a conversation (the pacer's
    reply lane), the rest wait behind those answers (the bulk lane).
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: Mapping[str, BaseChannel],
        *,
        attempts: int = 6,
        count_sent: Callable[[str, int], None] | None = None,
        reply_purposes: Collection[str] = (),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channels = channels
        self.attempts = attempts
        self._count_sent = count_sent
        self.reply_purposes = frozenset(reply_purposes)

    async def __call__(self, message: ResidentMessage) -> list[str]:
        """Send; returns the provider's ids of the parts it took (for delivery receipts)."""
        address = await self._address(message)
        channel = self.channels.get(message.channel)
        if channel is None:
            raise NotDelivered(f"the {message.channel} channel is not configured")
        outbound = [
            replace(m, purpose=message.purpose, template_variables=dict(message.template_variables))
            for m in channel.render([Notice(message.text)], message.locale, address)
        ]
        if len(outbound) > 1 and not await _free_form_allowed(channel, address):
            # Each part would go as the whole template: send the template once.
            outbound = outbound[:1]
        pacer = getattr(channel, "pacer", None)
        lane = Lane.REPLY if message.purpose in self.reply_purposes else Lane.BULK
        ids: list[str] = []
        for part_number, part in enumerate(outbound):
            delivery = await send_with_retries(
                channel, part, pacer=pacer, lane=lane, attempts=self.attempts
            )
            # The whole text is logged once, on the first part: it is what the resident was told.
            await self._record(message, part, delivery, logged_text=part_number == 0)
            if self._count_sent is not None and delivery.status in _DELIVERED:
                self._count_sent(part.channel, 1)
            if delivery.provider_message_id:
                ids.append(delivery.provider_message_id)
            if delivery.status not in _DELIVERED:
                reason = (
                    f"{message.purpose} for {message.reference} on {message.channel}: "
                    f"{delivery.status.value} {delivery.error_code or ''} {delivery.error or ''}"
                ).strip()
                if delivery.status is DeliveryStatus.UNREACHABLE:
                    raise Undeliverable(reason)
                raise NotDelivered(reason)
        return ids

    async def _address(self, message: ResidentMessage) -> str:
        async with self.sessionmaker() as session:
            resident = await session.get(Resident, message.resident_id)
            if resident is None or resident.erased_at is not None:
                raise ResidentGone(f"resident {message.resident_id} is erased")
            if resident.opted_out_at is not None:
                raise ResidentGone(f"resident {message.resident_id} opted out")
            address = await session.scalar(
                select(ResidentAddress.address)
                .where(
                    ResidentAddress.resident_id == resident.id,
                    ResidentAddress.channel == message.channel,
                    ResidentAddress.unreachable_at.is_(None),
                )
                .order_by(
                    ResidentAddress.last_inbound_at.desc().nulls_last(), ResidentAddress.id.desc()
                )
                .limit(1)
            )
        if address is None:
            raise Undeliverable(
                f"resident {message.resident_id} has no reachable {message.channel} address"
            )
        return address

    async def _record(
        self,
        message: ResidentMessage,
        part: OutboundMessage,
        delivery: Delivery,
        *,
        logged_text: bool,
    ) -> None:
        now = datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            session.add(
                MessageLog(
                    direction="out",
                    channel=part.channel,
                    address=part.address,
                    resident_id=message.resident_id,
                    provider_message_id=delivery.provider_message_id,
                    kind=message.purpose,
                    text=message.text if logged_text else None,
                    status=delivery.status.value,
                    status_updated_at=now,
                    created_at=now,
                )
            )
            await note_unreachable(
                session, part.channel, part.address, delivery.status, delivery.error_code
            )


async def _free_form_allowed(channel: BaseChannel, address: str) -> bool:
    """False where the channel sends a template instead of the text (WhatsApp after 24 hours)."""
    in_window = getattr(channel, "in_window", None)
    return in_window is None or bool(await in_window(address))
