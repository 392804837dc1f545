"""WhatsApp through Twilio: text, locations, photos and button taps in; numbered texts out.

WhatsApp's 24-hour rule: a business may write freely only within 24 hours of the resident's last
message. Replies (``purpose="reply"``) answer a message that just arrived, so they go as text.
Anything else (status updates, broadcasts) first asks ``last_inbound(address)`` (the core's
``resident_addresses.last_inbound_at``); outside the window it is sent as the approved template
configured for its purpose (``TWILIO_WHATSAPP_TEMPLATES='{"status_update": "HX..."}'``, sent as
ContentSid + ContentVariables from ``OutboundMessage.template_variables``). With no template for
that purpose the message is not sent and the Delivery says ``no_template``.

Free-form Twilio WhatsApp messages cannot carry buttons (only Content templates can), so options
are numbered as on SMS; a tap on a template's quick-reply button arrives as ``ButtonPayload`` and
becomes an ``option_id``. Voice notes, videos and stickers are answered politely, not read.

Example::

    channel = WhatsAppChannel(account, from_number="+27211234567", templates={"status_update": "HX.."})
    [inbound] = channel.parse(request)   # address "+27831234567" (the whatsapp: prefix is dropped)
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.base import BadRequest, ChannelRequest
from channels.http_session import ProviderSession
from channels.pacing import BasePacer, Pacer
from channels.sms_render import split_for_length
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
from forms_runtime.effects import GeoPoint

__all__ = ["SESSION_WINDOW", "WhatsAppChannel", "content_variables"]

SESSION_WINDOW = timedelta(hours=24)
PREFIX = "whatsapp:"
# Twilio caps a WhatsApp body at 1,600 characters.
_MAX_LENGTH = 1600
_UNREADABLE_TYPES = frozenset({"audio", "video", "sticker", "contacts", "reaction"})

LastInbound = Callable[[str], Awaitable[datetime | None]]


class WhatsAppChannel(TwilioChannel):
    name = "whatsapp"
    capabilities = Capabilities(
        max_length=_MAX_LENGTH,
        buttons=False,
        max_buttons=0,
        location_input=True,
        media=True,
        can_message_first=False,
    )

    def __init__(
        self,
        account: TwilioAccount,
        from_number: str | None,
        *,
        templates: Mapping[str, str] | None = None,
        last_inbound: LastInbound | None = None,
        per_second: float = 20.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        http: ProviderSession | None = None,
        pacer: BasePacer | None = None,
    ) -> None:
        super().__init__(account, http=http)
        self.from_number = (from_number or "").removeprefix(PREFIX)
        self.templates = dict(templates or {})
        self.last_inbound = last_inbound
        self._clock = clock
        self.pacer: BasePacer = pacer or Pacer(per_second, 1.0)

    def parse(self, request: ChannelRequest) -> list[InboundMessage]:
        form = request.form
        sid, sender = self.inbound_ids(form)
        common: dict[str, Any] = {
            "channel": self.name,
            "address": sender.removeprefix(PREFIX),
            "message_id": sid,
            "display_name": form.get("ProfileName") or None,
        }
        body = form.get("Body", "")
        if form.get("ButtonPayload"):
            return [
                InboundMessage(
                    kind=InboundKind.BUTTON, option_id=form["ButtonPayload"], text=body, **common
                )
            ]
        if form.get("Latitude") or form.get("Longitude"):
            try:
                point = GeoPoint(lat=float(form["Latitude"]), lon=float(form["Longitude"]))
            except (KeyError, ValueError):
                raise BadRequest("Latitude and Longitude must both be numbers") from None
            if not (-90 <= point.lat <= 90 and -180 <= point.lon <= 180):
                raise BadRequest("Latitude or Longitude is out of range")
            return [InboundMessage(kind=InboundKind.LOCATION, location=point, **common)]
        media = media_from_form(form)
        message_type = form.get("MessageType", "").lower()
        if message_type in _UNREADABLE_TYPES or any(
            m.content_type.startswith(("audio/", "video/")) for m in media
        ):
            return [InboundMessage(kind=InboundKind.UNSUPPORTED, **common)]
        if media:
            return [
                InboundMessage(kind=InboundKind.MEDIA, media=media, text=body or None, **common)
            ]
        return [InboundMessage(kind=InboundKind.TEXT, text=body, **common)]

    def split(self, text: str) -> list[str]:
        return split_for_length(text, _MAX_LENGTH)

    async def in_window(self, address: str) -> bool:
        """Whether the resident wrote within the last 24 hours (free-form messages allowed)."""
        if self.last_inbound is None:
            return False
        last = await self.last_inbound(address)
        if last is None:
            return False
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        return self._clock() - last < SESSION_WINDOW

    async def send(self, message: OutboundMessage) -> Delivery:
        params: dict[str, str] = {
            "to": PREFIX + message.address,
            "from_": PREFIX + self.from_number,
            "status_callback": self.status_callback,
        }
        try:
            if message.purpose == "reply" or await self.in_window(message.address):
                params["body"] = message.text
            else:
                content_sid = self.templates.get(message.purpose)
                if content_sid is None:
                    return Delivery(
                        status=DeliveryStatus.FAILED,
                        error_code="no_template",
                        error=f"outside the 24-hour window and no template for {message.purpose!r}",
                    )
                params["content_sid"] = content_sid
                params["content_variables"] = content_variables(message.template_variables)
            sent = await self.client.messages.create_async(**params)
        except Exception as exc:  # send reports every failure in the Delivery
            return delivery_from_error(exc)
        return Delivery(status=DeliveryStatus.SENT, provider_message_id=str(sent.sid))


def content_variables(variables: Mapping[str, str]) -> str:
    """WhatsApp templates take positional placeholders ({{1}}, {{2}}): number ours in order.

    The notifier gives them in a fixed order per purpose (``status_update``: reference, status;
    ``report_filed``: reference, the city's number), which is the order the approved template
    must use.
    """
    return json.dumps({str(i): value for i, value in enumerate(variables.values(), 1)})
