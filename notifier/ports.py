"""The port through which the bot speaks first to a resident, and how a send can fail.

The filer and the status poller decide *what* to say, in the resident's language, and store it in
the notification outbox (``notifier.outbox.enqueue``); the dispatcher hands each stored message to
a ``SendToResident`` (``notifier.delivery.ResidentDelivery`` in the app: address lookup,
rendering, pacing, WhatsApp templates by ``purpose``).

A send returns when the provider accepted the message, or raises:

    NotDelivered              did not reach the resident this time; worth trying again later
    └── Undeliverable         will never reach them this way (no reachable address, blocked)
        └── ResidentGone      opted out or erased: nothing may be sent

Example::

    async def send(message: ResidentMessage) -> None:
        if await opted_out(message.resident_id):
            raise ResidentGone(f"resident {message.resident_id} opted out")
        await channel.send(OutboundMessage(channel=message.channel, address=..., text=message.text))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["NotDelivered", "ResidentGone", "ResidentMessage", "SendToResident", "Undeliverable"]


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


class NotDelivered(Exception):
    """The message did not reach the resident's channel this time; the reason says why."""


class Undeliverable(NotDelivered):
    """Trying again would fail the same way: no reachable address, the resident blocked us."""


class ResidentGone(Undeliverable):
    """The resident opted out or was erased: nothing may be sent to them."""


# Returns what the sender knows of the provider's ids (ResidentDelivery: one per part), or None.
SendToResident = Callable[[ResidentMessage], Awaitable[object]]
