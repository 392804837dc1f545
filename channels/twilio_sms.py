"""SMS through Twilio: signed form posts in, numbered GSM-7 texts of at most 3 segments out.

SMS has no buttons, so options are numbered ("Reply 1 for Pothole") and the engine reads the
number back. Texts are transliterated to GSM-7 where that loses nothing and cut after sentence
ends so no message costs more than three segments. Twilio's own STOP handling and the turn loop's
opt-out words both apply; a send answered with error 21610 marks the resident unreachable.

Example::

    channel = SmsChannel(TwilioAccount(sid, token, "https://bot.city.gov"), from_number="+27211234567")
    channel.verify(request)                  # X-Twilio-Signature against the public URL
    [inbound] = channel.parse(request)       # InboundMessage(channel="sms", address="+2783...", ...)
    for message in channel.render(effects, "en", inbound.address):
        await send_with_retries(channel, message, pacer=channel.pacer)
"""

from __future__ import annotations

from channels.base import ChannelRequest
from channels.http_session import ProviderSession
from channels.pacing import BasePacer, Pacer
from channels.sms_render import split_for_sms
from channels.twilio_common import (
    TwilioAccount,
    TwilioChannel,
    delivery_from_error,
    media_from_form,
)
from channels.types import (
    Capabilities,
    Delivery,
    DeliveryStatus,
    InboundKind,
    InboundMessage,
    OutboundMessage,
)

__all__ = ["SmsChannel"]

MAX_SEGMENTS = 3


class SmsChannel(TwilioChannel):
    name = "sms"
    capabilities = Capabilities(
        max_length=MAX_SEGMENTS * 153,
        buttons=False,
        max_buttons=0,
        location_input=False,
        media=False,
        can_message_first=True,
        sms_segments=MAX_SEGMENTS,
    )

    def __init__(
        self,
        account: TwilioAccount,
        from_number: str | None,
        *,
        per_second: float = 10.0,
        per_address_per_second: float | None = None,
        http: ProviderSession | None = None,
        pacer: BasePacer | None = None,
    ) -> None:
        super().__init__(account, http=http)
        self.from_number = from_number
        # Twilio queues per sending number at its MPS; pacing here keeps our queue, not theirs.
        self.pacer: BasePacer = pacer or Pacer(per_second, per_address_per_second)

    def parse(self, request: ChannelRequest) -> list[InboundMessage]:
        form = request.form
        sid, sender = self.inbound_ids(form)
        body = form.get("Body", "")
        media = media_from_form(form)
        return [
            InboundMessage(
                channel=self.name,
                address=sender,
                message_id=sid,
                kind=InboundKind.MEDIA if media else InboundKind.TEXT,
                text=body if body or not media else None,
                media=media,
            )
        ]

    def split(self, text: str) -> list[str]:
        return split_for_sms(text, max_segments=MAX_SEGMENTS)

    async def send(self, message: OutboundMessage) -> Delivery:
        try:
            sent = await self.client.messages.create_async(
                to=message.address,
                from_=self.from_number,
                body=message.text,
                status_callback=self.status_callback,
            )
        except Exception as exc:  # send reports every failure in the Delivery
            return delivery_from_error(exc)
        return Delivery(status=DeliveryStatus.SENT, provider_message_id=str(sent.sid))
