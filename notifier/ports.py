"""The port through which the filer and the status poller speak to a resident.

They decide *what* to say, in the resident's language, and *that* it may be said (opt-out,
quiet hours); the application wires ``SendToResident`` to the resident's channel (looking up the
address, rendering, pacing, WhatsApp templates by ``purpose``).

Example::

    async def send(message: ResidentMessage) -> None:
        channel = services.channels[message.channel]
        await services.send(channel, OutboundMessage(channel=message.channel, address=..., text=message.text,
                                                     purpose=message.purpose,
                                                     template_variables=message.template_variables))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["ResidentMessage", "SendToResident"]


@dataclass(frozen=True, slots=True)
class ResidentMessage:
    resident_id: int
    # The channel the report came in on: the answer goes back there.
    channel: str
    locale: str
    text: str
    # "report_filed" or "status_update": WhatsApp picks its template by this outside 24 hours.
    purpose: str
    reference: str
    template_variables: dict[str, str] = field(default_factory=dict)


SendToResident = Callable[[ResidentMessage], Awaitable[None]]
