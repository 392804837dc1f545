"""The terminal channel: a person types lines, replies are printed as plain numbered text.

``citybot chat`` uses it to walk through a form exactly as the engine runs it. A typed line
becomes an ``InboundMessage``; ``/location LAT LON`` is a GPS pin, ``/photo URL [TYPE]`` a photo.

Example::

    channel = TerminalChannel(sys.stdout)
    inbound = channel.parse_line("/location -33.9 18.6", message_id="t1")
    for message in channel.render(effects, "en", "terminal"):
        await channel.send(message)        # printed
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from typing import Any, TextIO

from channels.base import BadRequest, BaseChannel, ChannelRequest
from channels.render_text import render_plain
from channels.types import (
    Capabilities,
    Delivery,
    DeliveryStatus,
    InboundKind,
    InboundMessage,
    OutboundMessage,
)
from forms_runtime.effects import Effect, GeoPoint, MediaRef

__all__ = ["TerminalChannel"]

LOCATION_USAGE = "Type /location LATITUDE LONGITUDE, for example /location -33.9 18.6"
PHOTO_USAGE = "Type /photo URL, for example /photo https://example.org/pothole.jpg"


class TerminalChannel(BaseChannel):
    name = "terminal"
    capabilities = Capabilities(
        max_length=100_000,
        buttons=False,
        max_buttons=0,
        location_input=True,
        media=True,
        can_message_first=True,
    )

    def __init__(self, out: TextIO, address: str = "terminal") -> None:
        self.out = out
        self.address = address

    def verify(self, request: ChannelRequest) -> None:
        """A local terminal needs no signature."""

    def parse(self, request: ChannelRequest) -> list[InboundMessage]:
        text = request.body.decode("utf-8", "replace")
        return [
            self.parse_line(line, f"{request.url}:{n}") for n, line in enumerate(text.splitlines())
        ]

    def parse_line(self, line: str, message_id: str) -> InboundMessage:
        """One typed line; ``BadRequest`` (with how to type it) for a broken /location or /photo."""
        text = line.rstrip("\r\n")
        base: dict[str, Any] = {
            "channel": self.name,
            "address": self.address,
            "message_id": message_id,
        }
        if text.startswith("/location"):
            parts = text.split()
            try:
                point = GeoPoint(lat=float(parts[1]), lon=float(parts[2]))
            except (IndexError, ValueError):
                raise BadRequest(LOCATION_USAGE) from None
            return InboundMessage(kind=InboundKind.LOCATION, location=point, **base)
        if text.startswith("/photo"):
            parts = text.split()
            if len(parts) < 2:
                raise BadRequest(PHOTO_USAGE)
            url = parts[1]
            kind = parts[2] if len(parts) > 2 else (mimetypes.guess_type(url)[0] or "image/jpeg")
            ref = MediaRef(url=url, content_type=kind)
            return InboundMessage(kind=InboundKind.MEDIA, media=(ref,), **base)
        return InboundMessage(kind=InboundKind.TEXT, text=text, **base)

    def render(self, effects: Sequence[Effect], locale: str, address: str) -> list[OutboundMessage]:
        text = render_plain(effects, locale, numbered_options=True)
        return [OutboundMessage(channel=self.name, address=address, text=text)] if text else []

    async def send(self, message: OutboundMessage) -> Delivery:
        self.out.write(message.text + "\n\n")
        self.out.flush()
        return Delivery(status=DeliveryStatus.SENT)
