"""Neutral message types shared by every channel and the conversation core.

No vendor type crosses this line: a channel turns a provider's payload into ``InboundMessage``
and an ``OutboundMessage`` into a provider call.

Example::

    InboundMessage(channel="sms", address="+27831234567", message_id="SM...", text="pothole")
"""

from __future__ import annotations

import re
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
    "clean_text",
]

# The longest text a resident's message keeps (Telegram's own limit; a Twilio message is at
# most 1,600). Anything longer is cut here, so no store sees a giant text.
MAX_TEXT_CHARS = 4096
# C0 control characters but tab, newline and carriage return, and lone surrogates (JSON can
# carry "\ud800"): PostgreSQL refuses a NUL in text, neither database can encode a surrogate,
# and no resident means any of them.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def clean_text(value: str) -> str:
    """``value`` without the characters no store should keep (see ``_UNSAFE``)."""
    return _UNSAFE.sub("", value) if _UNSAFE.search(value) else value


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

    def __post_init__(self) -> None:
        # Cleaned where text enters, whichever channel parsed it: a NUL or a lone surrogate
        # would otherwise fail the turn's commit (or the message log behind it).
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                cleaned = clean_text(value)
                if name == "text":
                    cleaned = cleaned[:MAX_TEXT_CHARS]
                if cleaned is not value:
                    object.__setattr__(self, name, cleaned)


_TEXT_FIELDS = (
    "address",
    "message_id",
    "text",
    "option_id",
    "contact_phone",
    "language_hint",
    "display_name",
)


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
