"""Neutral message types shared by every channel and the conversation core.

No vendor type crosses this line: a channel turns a provider's payload into ``InboundMessage``
and an ``OutboundMessage`` into a provider call.

Example::

    InboundMessage(channel="sms", address="+27831234567", message_id="SM...", text="pothole")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from forms_runtime.effects import GeoPoint, MediaRef

__all__ = [
    "Button",
    "Capabilities",
    "Delivery",
    "DeliveryReceipt",
    "DeliveryStatus",
    "InboundKind",
    "InboundMessage",
    "OutboundMessage",
]


class InboundKind(StrEnum):
    TEXT = "text"
    BUTTON = "button"
    LOCATION = "location"
    MEDIA = "media"
    CONTACT = "contact"
    # Stickers, voice notes, polls...: answered politely, never processed as an answer.
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class InboundMessage:
    channel: str
    # The resident's address on that channel: E.164 phone, Telegram chat id, web chat session id.
    address: str
    # The provider's id for this message; the dedupe key (with the channel).
    message_id: str
    kind: InboundKind = InboundKind.TEXT
    text: str | None = None
    option_id: str | None = None
    location: GeoPoint | None = None
    media: tuple[MediaRef, ...] = ()
    contact_phone: str | None = None
    # The provider's language hint (Telegram language_code), if any.
    language_hint: str | None = None
    display_name: str | None = None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    max_length: int
    buttons: bool
    max_buttons: int
    location_input: bool
    media: bool
    # Whether the bot may start a conversation (SMS yes; WhatsApp only through templates).
    can_message_first: bool
    # Number of SMS segments one message may use; 0 where segments do not apply.
    sms_segments: int = 0


@dataclass(frozen=True, slots=True)
class Button:
    id: str
    label: str
    # "reply" (a choice), "location" (ask for a GPS pin), "contact" (ask for a phone number).
    kind: str = "reply"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    channel: str
    address: str
    text: str
    buttons: tuple[Button, ...] = ()
    # A message kind ("status_update", "broadcast", "reply"): WhatsApp picks a template by it.
    purpose: str = "reply"
    template_variables: dict[str, str] = field(default_factory=dict)


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    # The resident blocked the bot or opted out at the provider: stop sending.
    UNREACHABLE = "unreachable"
    # The provider asked us to slow down; retry after ``retry_after`` seconds.
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class Delivery:
    status: DeliveryStatus
    provider_message_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A provider's word on an outbound message (Twilio StatusCallback), vendor-neutral."""

    provider_message_id: str
    status: DeliveryStatus
    channel: str
    address: str
    error_code: str | None = None
